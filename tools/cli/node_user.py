"""`childreg node user …`: the department admin manages the web console's accounts.

Run on the node's host with the node's configuration (it opens the node's encrypted store
with the KEK, like `childreg node access-report`); each command leaves one
``console.account`` audit leaf naming the operator. The node may be serving meanwhile.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import segno
import typer
from rich.table import Table

from childreg.config import load_config
from node.config import NodeConfig
from node.server import Enrolment, open_operator
from tools.cli.console import err, out
from tools.cli.options import ConfigOpt, JsonOpt

app = typer.Typer(help="Manage the web console's accounts of this node.", no_args_is_help=True)

LoginArg = Annotated[str, typer.Argument(help="The person's login at this department.")]
PasswordStdinOpt = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from standard input (at least 12 characters) instead of "
        "making one.",
    ),
]
QrOpt = Annotated[
    Path | None,
    typer.Option("--qr-svg", dir_okay=False, help="Also write the TOTP QR code to this SVG file."),
]


def _password(from_stdin: bool) -> str | None:
    return sys.stdin.readline().rstrip("\n") if from_stdin else None


def _enrolled(enrolment: Enrolment, as_json: bool, qr: Path | None, what: str) -> None:
    if qr is not None:
        segno.make(enrolment.totp_uri, error="m").save(str(qr), kind="svg", scale=4)
    data: dict[str, Any] = {
        "login": enrolment.login,
        "role": enrolment.role,
        "totp_secret": enrolment.totp_secret,
        "totp_uri": enrolment.totp_uri,
    }
    if enrolment.password is not None:
        data["password"] = enrolment.password
    if as_json:
        typer.echo(json.dumps(data))
        return
    err.print(f"{what} {enrolment.login} ({enrolment.role}). Give the person, once:")
    if enrolment.password is not None:
        out.print(f"password:    {enrolment.password}")
    out.print(f"TOTP secret: {enrolment.totp_secret}")
    out.print(f"TOTP URI:    {enrolment.totp_uri}")
    if qr is not None:
        err.print(f"the QR code to scan is in {qr}")


@app.command("add")
def add(
    login: LoginArg,
    config: ConfigOpt,
    role: Annotated[str, typer.Option(help="staff, department-admin or read-only.")] = "staff",
    language: Annotated[str, typer.Option(help="The person's language: en, ru, az, kk.")] = "en",
    password_stdin: PasswordStdinOpt = False,
    qr_svg: QrOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a console account: prints its password (unless given) and TOTP secret once."""
    cfg = load_config(NodeConfig, config)
    with open_operator(cfg) as session:
        enrolment = session.add_user(login, role, language, _password(password_stdin))
    _enrolled(enrolment, as_json, qr_svg, "added")


@app.command("reset")
def reset(
    login: LoginArg,
    config: ConfigOpt,
    password_stdin: PasswordStdinOpt = False,
    qr_svg: QrOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A new password and TOTP secret for an account; it is unlocked and enabled again."""
    cfg = load_config(NodeConfig, config)
    with open_operator(cfg) as session:
        enrolment = session.reset_user(login, _password(password_stdin))
    _enrolled(enrolment, as_json, qr_svg, "reset")


@app.command("disable")
def disable(login: LoginArg, config: ConfigOpt, as_json: JsonOpt = False) -> None:
    """Disable an account: it can no longer sign in (`user reset` enables it again)."""
    cfg = load_config(NodeConfig, config)
    with open_operator(cfg) as session:
        session.disable_user(login)
    if as_json:
        typer.echo(json.dumps({"login": login, "disabled": True}))
    else:
        err.print(f"disabled {login}; its console sessions end at its next request")


@app.command("list")
def list_cmd(config: ConfigOpt, as_json: JsonOpt = False) -> None:
    """Every console account of this node (login, role, language, status)."""
    cfg = load_config(NodeConfig, config)
    with open_operator(cfg) as session:
        users = session.list_users()
    rows = [
        {"login": u.login, "role": u.role, "language": u.language, "disabled": u.disabled,
         "locked": u.locked, "changed_at": u.changed_at.isoformat(timespec="seconds")}
        for u in users
    ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table(title=f"Console accounts of {cfg.department_id}")
    for column in ("login", "role", "language", "status", "changed_at"):
        table.add_column(column)
    for row in rows:
        status = "disabled" if row["disabled"] else "locked" if row["locked"] else "active"
        table.add_row(str(row["login"]), str(row["role"]), str(row["language"]), status,
                      str(row["changed_at"]))  # fmt: skip
    out.print(table)
