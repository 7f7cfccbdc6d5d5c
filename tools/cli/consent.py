"""`childreg consent …`: department staff record and withdraw a guardian's consent.

Granting prints the grant the school will hold: it is shown once, never stored in the
clear, so staff must hand it to the school over a secure channel. Grant and withdrawal
both give the guardian a receipt in the guardian's language (``--language`` at the grant),
written as printable HTML, PDF and JSON (owner-readable only: it names the guardian) into
``--receipt-dir`` or, by default, ``~/.local/share/childreg/receipts``. The commands are a
few lines over :mod:`tools.clients.consents`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tools.cli.console import err
from tools.cli.options import IdentityOpt, JsonOpt, NodeOpt, ServerNameOpt, TimeoutOpt
from tools.clients import consents
from tools.clients.client import Endpoint

app = typer.Typer(help="Record and withdraw guardians' consents.", no_args_is_help=True)

ReceiptDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--receipt-dir",
        file_okay=False,
        help="Write the guardian's receipt (.html, .pdf, .json) here "
        "[default: $XDG_DATA_HOME/childreg/receipts, i.e. ~/.local/share/childreg/receipts].",
    ),
]
LanguageOpt = Annotated[
    str,
    typer.Option(
        "--language",
        help="The guardian's language for the receipts: en, ru, az or kk "
        "[default: the country profile's first language].",
    ),
]
ChildOpt = Annotated[str, typer.Option("--child", help="The child's id at this department.")]
ConsentIdArg = Annotated[str, typer.Argument(help="The consent id (cns_…).")]


def _wrote(files: list[str]) -> None:
    for path in files:
        err.print(f"wrote the guardian's receipt {path}")


@app.command()
def grant(
    node: NodeOpt,
    identity: IdentityOpt,
    child: ChildOpt,
    guardian: Annotated[str, typer.Option("--guardian", help="The consenting guardian's name.")],
    purpose: Annotated[str, typer.Option("--purpose", help="The purpose, e.g. iep_preparation.")],
    school: Annotated[
        str, typer.Option("--school", help="The school: spiffe://<federation>/school/<id>.")
    ],
    valid_from: Annotated[str, typer.Option("--from", help="First valid day (YYYY-MM-DD).")],
    valid_until: Annotated[
        str, typer.Option("--until", help="Last valid day, inclusive (YYYY-MM-DD).")
    ],
    evidence: Annotated[
        str, typer.Option("--evidence", help="Where the signed consent form is filed.")
    ],
    server_name: ServerNameOpt = None,
    receipt_dir: ReceiptDirOpt = None,
    language: LanguageOpt = "",
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Record a guardian's consent, print the grant to hand to the school and write the
    guardian's receipt."""
    asked = consents.Consent(
        child, guardian, purpose, school, valid_from, valid_until, evidence, language
    )
    done = consents.grant(Endpoint(node, identity, server_name, timeout), asked, receipt_dir)
    if as_json:
        data = {"consent": done.consent, "grant": done.grant}
        typer.echo(
            json.dumps({**data, "notice": consents.GRANT_NOTICE, "receipt_files": done.files})
        )
        return
    typer.echo(f"consent id: {done.consent['consent_id']}")
    typer.echo(f"grant:      {done.grant}")
    typer.echo(consents.GRANT_NOTICE)
    _wrote(done.files)


@app.command()
def withdraw(
    consent_id: ConsentIdArg,
    node: NodeOpt,
    identity: IdentityOpt,
    server_name: ServerNameOpt = None,
    receipt_dir: ReceiptDirOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw a consent now (its grant stops working immediately) and write the
    guardian's receipt, in the language chosen at the grant."""
    endpoint = Endpoint(node, identity, server_name, timeout)
    done = consents.withdraw(endpoint, consent_id, receipt_dir)
    if as_json:
        typer.echo(json.dumps({"consent": done.consent, "receipt_files": done.files}))
        return
    typer.echo(f"withdrew {done.consent['consent_id']} at {done.consent['withdrawn_at']}")
    _wrote(done.files)


@app.command("list")
def list_cmd(
    node: NodeOpt,
    identity: IdentityOpt,
    child: ChildOpt,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """List a child's consents, oldest first."""
    rows = consents.list_consents(Endpoint(node, identity, server_name, timeout), child)
    if as_json:
        typer.echo(json.dumps({"consents": rows}))
        return
    if not rows:
        typer.echo("no consents")
    for row in rows:
        typer.echo(consents.consent_line(row))


@app.command()
def show(
    consent_id: ConsentIdArg,
    node: NodeOpt,
    identity: IdentityOpt,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Show one consent (never its grant: the node does not keep it)."""
    data = consents.show(Endpoint(node, identity, server_name, timeout), consent_id)
    if as_json:
        typer.echo(json.dumps(data))
        return
    for key, value in data.items():
        typer.echo(f"{key}: {value or '-'}")


@app.command("break-glass")
def break_glass(
    child_id: Annotated[str, typer.Argument(help="The child's id at this department.")],
    reason: Annotated[
        str, typer.Option(help="Why this emergency access is needed (20–500 characters).")
    ],
    node: NodeOpt,
    identity: IdentityOpt,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Emergency access to a child's whole record: the reason is kept (sealed) at the node,
    and the access is logged as break-glass for the auditors' report. Prints the record."""
    endpoint = Endpoint(node, identity, server_name, timeout)
    typer.echo(consents.break_glass(endpoint, child_id, reason))
