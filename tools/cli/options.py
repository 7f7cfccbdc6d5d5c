"""Options shared by several commands (one definition, the same names and variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from childreg import profile
from childreg.errors import InvalidInput, Violation

ConfigOpt = Annotated[
    Path,
    typer.Option(
        "--config", "-c", help="Service configuration file (.toml or .yaml).", exists=True,
        dir_okay=False, readable=True,
    ),
]  # fmt: skip
ReadyFileOpt = Annotated[
    Path | None,
    typer.Option(help="Write {'address', 'pid'} as JSON here once listening (for supervisors)."),
]
IdentityOpt = Annotated[
    Path,
    typer.Option(
        "--identity", envvar="CHILDREG_IDENTITY", file_okay=False,
        help="Your identity directory (ca.crt, tls.crt, tls.key) from the federation CA.",
    ),
]  # fmt: skip
ServerNameOpt = Annotated[
    str | None,
    typer.Option(
        "--server-name", envvar="CHILDREG_SERVER_NAME",
        help="The DNS name the server's certificate must carry (pins the server).",
    ),
]  # fmt: skip
NodeOpt = Annotated[
    str, typer.Option("--node", envvar="CHILDREG_NODE", help="The node's address, host:port.")
]
CoordinatorOpt = Annotated[
    str,
    typer.Option("--coordinator", envvar="CHILDREG_COORDINATOR", help="The coordinator's address."),
]
TimeoutOpt = Annotated[float, typer.Option(help="Deadline for each call, in seconds.", min=0.1)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]

CountryOpt = Annotated[
    str, typer.Option("--country", help="Country profile: az (Azerbaijan) or kz (Kazakhstan).")
]


def country_profile(country: str) -> profile.Profile:
    """The shipped profile of ``country``; InvalidInput naming --country otherwise."""
    try:
        return profile.embedded(country)
    except ValueError:
        raise InvalidInput(
            "unknown country", [Violation("country", f"expected one of {profile.COUNTRIES}")]
        ) from None
