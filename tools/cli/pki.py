"""`childreg pki …`: the federation operator's private CA and identities.

The commands are a few lines over :mod:`childreg.pki` and :mod:`tools.clients.operator`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from childreg.pki import ROLES, CertificateAuthority
from childreg.revocation import DENYLIST_FILE
from tools.cli.console import err, out
from tools.cli.options import JsonOpt
from tools.clients import operator

app = typer.Typer(help="The federation's private CA and its identities.", no_args_is_help=True)

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
    out_dir: Annotated[
        Path,
        typer.Option("--out", help="Identity directory to write (ca.crt, tls.crt, tls.key)."),
    ],
    ca_dir: CaDirOpt,
    dns: Annotated[list[str] | None, typer.Option(help="DNS name for a server (repeat).")] = None,
    ip: Annotated[list[str] | None, typer.Option(help="IP address for a server (repeat).")] = None,
    hours: Annotated[
        float | None,
        typer.Option(
            help="Validity in hours (default: 8760, a year, for node, coordinator and "
            "witness; 2160, 90 days, for people and clients).",
            min=0.1,
        ),
    ] = None,
) -> None:
    """Issue an identity spiffe://<federation>/<role>/<id> signed by the CA."""
    files = operator.issue(ca_dir, role, ident, out_dir, dns=dns or (), ip=ip or (), hours=hours)
    err.print(f"issued {files.spiffe_id()} into {out_dir}")


@app.command()
def revoke(
    serial: Annotated[
        list[str] | None, typer.Argument(help="Serial numbers (hex, as `pki list` shows).")
    ] = None,
    cert: Annotated[
        list[Path] | None, typer.Option(help="Revoke the certificate in this file (repeat).")
    ] = None,
    ca_dir: CaDirOpt = Path("ca"),
) -> None:
    """Add certificates to the CA's signed deny-list (none: re-sign it); hand it to the publisher.

    Copy denylist.json to the publisher's (the coordinator's) denylist_file; every server
    fetches it from there within its fetch_seconds (docs/operations.md).
    """
    deny = operator.revoke(ca_dir, serial or [], cert or [])
    err.print(
        f"deny-list version {deny.version}: {len(deny.serials)} revoked; copy "
        f"{ca_dir / DENYLIST_FILE} to the publisher's (the coordinator's) denylist_file; "
        "every server fetches it within its [revocation] fetch_seconds"
    )


@app.command("list")
def list_cmd(ca_dir: CaDirOpt = Path("ca"), as_json: JsonOpt = False) -> None:
    """Every certificate the CA has issued, and whether it is revoked."""
    federation, rows = operator.certificates(ca_dir)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    out.print(operator.certificate_table(federation, rows))
