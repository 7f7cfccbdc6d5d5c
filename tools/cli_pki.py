"""`childreg pki …`: the federation operator's private CA and identities."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from childreg.pki import ROLES, CertificateAuthority

app = typer.Typer(help="The federation's private CA and its identities.", no_args_is_help=True)
err = Console(stderr=True, highlight=False)

CaDirOpt = Annotated[
    Path,
    typer.Option("--ca-dir", envvar="CHILDREG_CA_DIR", help="The CA directory (ca.crt, ca.key)."),
]


@app.command()
def init(
    federation: Annotated[str, typer.Option(help="The federation's name, e.g. az.childreg.")],
    ca_dir: CaDirOpt,
) -> None:
    """Create the federation's CA (EC P-256); the key is written 0600 and never printed."""
    CertificateAuthority.create(federation, ca_dir)
    err.print(f"created the CA of {federation} in {ca_dir}")


@app.command()
def issue(
    role: Annotated[str, typer.Argument(help=f"One of: {', '.join(ROLES)}.")],
    ident: Annotated[str, typer.Argument(help="The party's id, e.g. a department id.")],
    out: Annotated[
        Path, typer.Option(help="Identity directory to write (ca.crt, tls.crt, tls.key).")
    ],
    ca_dir: CaDirOpt,
    dns: Annotated[list[str] | None, typer.Option(help="DNS name for a server (repeat).")] = None,
    ip: Annotated[list[str] | None, typer.Option(help="IP address for a server (repeat).")] = None,
    hours: Annotated[float, typer.Option(help="Validity in hours.", min=0.1)] = 24.0,
) -> None:
    """Issue an identity spiffe://<federation>/<role>/<id> signed by the CA."""
    ca = CertificateAuthority.load(ca_dir)
    files = ca.issue(
        role,
        ident,
        out,
        dns_names=tuple(dns or ()),
        ip_addresses=tuple(ip or ()),
        validity=dt.timedelta(hours=hours),
    )
    err.print(f"issued {files.spiffe_id()} into {out}")
