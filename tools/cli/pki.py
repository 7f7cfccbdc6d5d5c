"""`childreg pki …`: the federation operator's private CA and identities.

The commands are a few lines over :mod:`childreg.pki` and :mod:`tools.clients.operator`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from childreg.pki import ROLES, CertificateAuthority, IdentityFiles
from childreg.pki_renew import renew_identity
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


@app.command(
    epilog="Example: copy the server's tls.crt into ./renew/alpha, then `childreg pki renew "
    "./renew/alpha --ca-dir ca` and copy tls.crt back into the server's identity_dir; the "
    "running server serves it on its next connection (docs/operations.md).",
)
def renew(
    identity_dir: Annotated[
        Path,
        typer.Argument(help="The identity directory whose tls.crt to renew (written in place)."),
    ],
    ca_dir: CaDirOpt,
    hours: Annotated[
        float | None,
        typer.Option(help="Validity in hours (default: the role's, as for `pki issue`).", min=0.1),
    ] = None,
    new_key: Annotated[
        bool,
        typer.Option(
            "--new-key",
            help="Also make a new key pair and replace tls.key (the key then travels back to "
            "its owner: move it securely).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Renew a service's or person's certificate before it expires, keeping the identity.

    The new certificate has a new serial and validity and the same SPIFFE id, DNS names,
    addresses and usages, and by default the same key (only tls.crt changes, atomically).
    A running node, coordinator or witness serves it from its next connection on, with no
    restart; a client uses it from its next call. Refused for a revoked certificate or one
    another CA issued. The old certificate stays valid until it expires: revoke it with
    `childreg pki revoke SERIAL` if it must stop working at once.
    """
    validity = None if hours is None else dt.timedelta(hours=hours)
    done = renew_identity(
        CertificateAuthority.load(ca_dir), IdentityFiles(identity_dir), validity=validity,
        new_key=new_key,
    )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(done.to_json()))
        return
    err.print(
        f"renewed {done.spiffe_id}: serial {done.new_serial:x} (was {done.old_serial:x}), "
        f"valid until {done.not_after:%Y-%m-%d %H:%M} UTC; copy {identity_dir / 'tls.crt'} "
        + ("and tls.key " if done.new_key else "")
        + "back into the party's identity directory"
    )


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
