"""`childreg pki …`: the federation operator's private CA and identities."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from rich.console import Console
from rich.table import Table

from childreg.pki import ROLES, CertificateAuthority
from childreg.revocation import DENYLIST_FILE, issued, verify
from tools.cli.options import JsonOpt
from tools.clients.client import EXIT_USAGE, CliError

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
    """Add certificates to the CA's signed deny-list; copy denylist.json to every server."""
    serials = [_hex_serial(s) for s in serial or []]
    serials += [x509.load_pem_x509_certificate(p.read_bytes()).serial_number for p in cert or []]
    if not serials:
        raise CliError("name at least one serial or --cert", code=EXIT_USAGE)
    deny = CertificateAuthority.load(ca_dir).revoke(serials)
    err.print(
        f"deny-list version {deny.version}: {len(deny.serials)} revoked; "
        f"copy {ca_dir / DENYLIST_FILE} to every server's denylist_file (reloaded within a second)"
    )


@app.command("list")
def list_cmd(ca_dir: CaDirOpt = Path("ca"), as_json: JsonOpt = False) -> None:
    """Every certificate the CA has issued, and whether it is revoked."""
    ca = CertificateAuthority.load(ca_dir)
    path = ca_dir / DENYLIST_FILE
    revoked = verify(path.read_bytes(), ca.cert).serials if path.exists() else frozenset()
    rows: list[dict[str, object]] = [
        {**row, "revoked": int(row["serial"], 16) in revoked} for row in issued(ca_dir)
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"certificates issued by the {ca.federation} CA")
    for col in ("serial", "identity", "valid until", "revoked"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            str(row["serial"]),
            str(row["spiffe_id"]),
            str(row["not_after"]),
            "yes" if row["revoked"] else "",
        )
    Console(highlight=False).print(table)


def _hex_serial(text: str) -> int:
    try:
        return int(text.replace(":", ""), 16)
    except ValueError:
        raise CliError(f"not a hexadecimal serial number: {text!r}", code=EXIT_USAGE) from None
