"""`childreg node …`: what department staff and their operators run.

The commands that open the node with its key-encryption key go through
``node.server.open_operator``; the two that touch a child (``access-report`` and
``pseudonym``) leave one audit leaf each, naming the operator as
``department-operator/<department>.<login>`` (the login of the account running them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import tomli_w
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from childreg import csvformat, logsetup, profile
from childreg.config import load_config
from node.config import NodeConfig
from node.server import (
    LogUnverified,
    init_node,
    make_kek_file,
    open_operator,
    rotate_kek,
    serve,
)
from tools.cli import node_backup, node_user
from tools.cli.console import err, out
from tools.cli.options import (
    ConfigOpt,
    IdentityOpt,
    JsonOpt,
    ReadyFileOpt,
    ServerNameOpt,
    TimeoutOpt,
    country_profile,
)
from tools.clients import importer
from tools.clients.client import EXIT_UNVERIFIED, CliError, Endpoint
from tools.clients.records import read_child

app = typer.Typer(help="Run a department's node and work with its records.", no_args_is_help=True)
app.add_typer(node_user.app, name="user")

app.add_typer(node_backup.app, name="backup")
app.command("restore")(node_backup.restore)

NodeOpt = Annotated[
    str, typer.Option("--node", envvar="CHILDREG_NODE", help="The node's address, host:port.")
]


def _progress(as_json: bool) -> Progress:
    """A progress bar on standard error for a person at a terminal (none for --json)."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
    )


@app.command()
def keygen(
    path: Annotated[
        Path, typer.Option("--out", help="Where to write the new key file (mode 0600).")
    ],
) -> None:
    """Make a random key-encryption key (KEK) file; keep it off the node's data disk."""
    make_kek_file(path)
    err.print(f"wrote a new key-encryption key to {path} (mode 0600)")


@app.command()
def init(config: ConfigOpt) -> None:
    """Create the node's data directory, keyring and empty encrypted database."""
    cfg = load_config(NodeConfig, config)
    init_node(cfg)
    err.print(f"initialised node {cfg.department_id} in {cfg.data_dir}")


@app.command("serve")
def serve_cmd(config: ConfigOpt, ready_file: ReadyFileOpt = None) -> None:
    """Run the node's mutual-TLS gRPC server until SIGTERM/SIGINT."""
    cfg = load_config(NodeConfig, config)
    logsetup.configure(cfg.log_level)
    serve(cfg, ready_file)


@app.command("import", help="Import a CSV file, all rows or none.\n\n" + csvformat.format_help())
def import_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    node: NodeOpt,
    identity: IdentityOpt,
    server_name: ServerNameOpt = None,
    check_only: Annotated[
        bool, typer.Option("--check-only", help="Only validate the file; contact no node.")
    ] = False,
    country: Annotated[
        str,
        typer.Option(
            "--country",
            help="Country profile the file is checked against first (az or kz); the node "
            "checks it again against its own.",
        ),
    ] = profile.DEFAULT_COUNTRY,
    as_json: JsonOpt = False,
) -> None:
    """Import a CSV file into a node (documented in docs/import-format.md).

    \b
    Example:
      childreg node import children.csv --node node.example:7443 --identity staff --country kz
    """
    with profile.installed(country_profile(country)):
        _import(file, node, identity, server_name, check_only=check_only, as_json=as_json)


def _import(
    file: Path,
    node: str,
    identity: Path,
    server_name: str | None,
    *,
    check_only: bool,
    as_json: bool,
) -> None:
    if check_only:
        rows = importer.check(file)
        _done(as_json, {"file": file.name, "valid_rows": rows}, f"{rows} rows are valid")
        return
    rows = importer.check(file)
    endpoint = Endpoint(node, identity, server_name)
    with _progress(as_json) as bar:
        task = bar.add_task(f"importing {file.name}", total=rows)
        imported = importer.import_file(
            endpoint, file, lambda n: bar.advance(task, n), checked_rows=rows
        )
    _done(as_json, {"file": file.name, "imported": imported}, f"imported {imported} children")


@app.command("show-child")
def show_child(
    child_id: Annotated[str, typer.Argument(help="The node's internal child id.")],
    node: NodeOpt,
    identity: IdentityOpt,
    server_name: ServerNameOpt = None,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Print everything the node holds about one child, as JSON."""
    view = read_child(Endpoint(node, identity, server_name, timeout), child_id)
    typer.echo(view.model_dump_json(indent=2))


@app.command("audit-key")
def audit_key(config: ConfigOpt, as_json: JsonOpt = False) -> None:
    """Print the node's audit-log verifier key and origin (auditors and witnesses pin it)."""
    cfg = load_config(NodeConfig, config)
    with open_operator(cfg) as session:
        origin, key = session.audit_key()
    _done(as_json, {"origin": origin, "verifier_key": key}, key)


@app.command("extract-key")
def extract_key(config: ConfigOpt, as_json: JsonOpt = False) -> None:
    """Print the public key that signs this node's extracts (schools pin it; base64)."""
    cfg = load_config(NodeConfig, config)
    with open_operator(cfg) as session:
        key = session.extract_key()
    _done(as_json, {"extract_key": key}, key)


@app.command("roster-entry")
def roster_entry_cmd(config: ConfigOpt, as_json: JsonOpt = False) -> None:
    """Print this department's entry for the secure-aggregation roster (public keys only).

    The statistics authority pastes it into the roster file, signs the roster and gives
    it to the coordinator (`childreg stats roster sign`). Prints a TOML `[[members]]`
    table to standard output — department, node identity, X25519 masking key and Ed25519
    upload key, in base64 — or with --json one JSON object. Opens the keyring (needs the
    KEK, like audit-key); the keys are derived from it and stay the same for the node's
    life, so run it again only when the keyring changes.
    """
    cfg = load_config(NodeConfig, config)
    with open_operator(cfg) as session:
        entry = session.roster_entry()
    if as_json:
        typer.echo(json.dumps(entry))
    else:
        typer.echo(tomli_w.dumps({"members": [entry]}), nl=False)


@app.command()
def pseudonym(
    child_id: Annotated[str, typer.Argument(help="The child's id at this department.")],
    config: ConfigOpt,
    as_json: JsonOpt = False,
) -> None:
    """The child's keyed pseudonym in the audit log, for a guardian's access report.

    Then: `childreg audit search --subject HEX …` lists who accessed the child's record.
    Only the department can compute it (the key never leaves its keyring). Leaves one
    audit leaf naming the operator (department-operator/<department>.<login>).
    """
    cfg = load_config(NodeConfig, config)
    with open_operator(cfg) as session:
        value = session.pseudonym(child_id)
    _done(as_json, {"subject": value}, value)


@app.command(
    "rotate-kek",
    epilog="Example: childreg node keygen --out /etc/childreg/kek-2027.key && "
    "systemctl stop childreg-node && childreg node rotate-kek --config /etc/childreg/node.toml "
    "--new-kek /etc/childreg/kek-2027.key, then set kek_file to the new file, start the node "
    "and destroy the old key file (docs/operations.md).",
)
def rotate_kek_cmd(
    config: ConfigOpt,
    new_kek: Annotated[
        Path,
        typer.Option(
            "--new-kek",
            exists=True,
            dir_okay=False,
            readable=True,
            help="The new key file (from `childreg node keygen`), kept off the data disk.",
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Rewrap the keyring and every child's key under a new key-encryption key (KEK).

    Run it on the node's host with the node stopped (it refuses while the node serves).
    The current KEK comes from the configuration; afterwards only the new one opens the
    node. Crash-safe: killed at any point, the node opens with exactly one of the two KEKs
    and the error says which; running the command again finishes or redoes it. Leaves one
    keys.rotate audit leaf naming the operator.
    """
    cfg = load_config(NodeConfig, config)
    with _progress(as_json) as bar:
        task = bar.add_task("rewrapping child keys", total=None)
        summary = rotate_kek(
            cfg,
            new_kek,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    data = {**summary.to_json(), "new_kek_file": str(new_kek)}
    _done(
        as_json,
        data,
        f"rewrapped {summary.children} child keys and the keyring under the new KEK "
        f"(generation {summary.to_generation}) in {summary.seconds:.1f} s; now set kek_file "
        f'= "{new_kek}" in {config}, start the node, and destroy the old key file',
    )


REPORT_COLUMNS = ("time", "who", "action", "purpose", "outcome", "leaf")


@app.command("access-report")
def access_report(
    child_id: Annotated[str, typer.Argument(help="The child's id at this department.")],
    config: ConfigOpt,
    as_json: JsonOpt = False,
) -> None:
    """A guardian's report: who accessed this child's record, when, why, with what outcome.

    Read at the department from the node's own (verified) audit log; the child appears in
    the log only as a keyed pseudonym, which only the department can compute. Leaves one
    audit leaf naming the operator (department-operator/<department>.<login>).
    """
    cfg = load_config(NodeConfig, config)
    try:
        with open_operator(cfg) as session:
            report = session.access_report(child_id)
    except LogUnverified as exc:
        raise CliError(
            f"the node's audit log does not verify ({exc}); no report was made",
            code=EXIT_UNVERIFIED,
            hint="keep the database as it is; tell the data-protection officer",
        ) from None
    rows = [
        {"time": e.time, "who": e.actor, "action": e.action, "purpose": e.purpose,
         "grant": e.grant, "outcome": e.outcome, "leaf": e.seq}
        for e in report.accesses
    ]  # fmt: skip
    checked = report.verified_leaves
    if as_json:
        data = {"subject": report.subject, "verified_leaves": checked, "accesses": rows}
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(title="Who accessed this child's record (from the department's audit log)")
    for column in REPORT_COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in REPORT_COLUMNS))
    table.caption = (
        f"{len(rows)} entries; the log verified against the node's signed checkpoint of "
        f"{checked} leaves ({report.total_leaves - checked} later leaves not yet checkpointed)"
    )
    out.print(table)


def _done(as_json: bool, data: dict[str, object], text: str) -> None:
    if as_json:
        typer.echo(json.dumps(data))
    else:
        err.print(text)
