"""`childreg node backup`, `childreg node backup verify`, `childreg node restore`.

Each a few lines over node.server's backup_node, verify_backup and restore_node
(node/backup.py, node/restore.py; procedure in docs/operations.md). The backup runs while
the node serves; the restore needs it stopped and its data directory empty.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn

from childreg.config import load_config
from node.config import NodeConfig
from node.server import backup_node, restore_node, verify_backup
from tools.cli.console import err
from tools.cli.options import ConfigOpt, JsonOpt
from tools.clients.client import CliError

app = typer.Typer(no_args_is_help=False, invoke_without_command=True)

KekFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--kek-file",
        exists=True,
        dir_okay=False,
        readable=True,
        help="The KEK the backup was made with, if the configuration now names another "
        "(after a KEK rotation).",
    ),
]


class _Bar:
    """One progress bar on standard error per stage (none for --json or off a terminal)."""

    def __init__(self, as_json: bool) -> None:
        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=as_json or not err.is_terminal,
        )
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self._tasks:
            self._tasks[stage] = self.progress.add_task(_STAGES.get(stage, stage), total=total)
        self.progress.update(self._tasks[stage], completed=done, total=total)


_STAGES = {
    "copy": "copying the encrypted database",
    "digest": "checking file digests",
    "verify": "opening and checking the copy",
    "replay": "replaying the change journal",
}


def _emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    if as_json:
        typer.echo(json.dumps(data))
    else:
        err.print(text)


@app.callback()
def backup(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", exists=True, dir_okay=False, readable=True,
                     help="The node's configuration file."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="A new (or empty) directory for the backup."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Back up the node into a new directory while it serves.

    One committed state of the encrypted database (its bytes, under the same SQLCipher
    key, copied while the node writes), the keyring (keys wrapped by the KEK; the KEK
    itself is never in a backup) and a manifest with digests. Keep the backup, the node's
    KEK and its change journal apart from each other.

    \b
    Example:
      childreg node backup --config /etc/childreg/node.toml --out /backups/baku/2026-12-07
    """
    if ctx.invoked_subcommand is not None:
        return
    if config is None or out is None:
        raise CliError("give --config and --out (or `childreg node backup verify DIR`)")
    cfg = load_config(NodeConfig, config)
    bar = _Bar(as_json)
    with bar.progress:
        summary = backup_node(cfg, out, progress=bar)
    data = {**summary.to_json(), "backup": str(out), "journal": cfg.backup.journal_dir is not None}
    if cfg.backup.journal_dir is None and not as_json:
        err.print(
            "warning: this node has no change journal ([backup] journal_dir): a restore of "
            "this backup can bring back nothing after it (docs/operations.md)"
        )
    _emit(
        as_json,
        data,
        f"backed up {summary.manifest['children']} children and {summary.audit_size} audit "
        f"leaves into {out} in {summary.seconds:.1f} s; check it with `childreg node backup "
        f"verify {out} --config {config}`",
    )


@app.command("verify")
def verify(
    backup_dir: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="The backup's directory.")
    ],
    config: ConfigOpt,
    kek_file: KekFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a backup with the node's KEK: manifest MAC and digests, SQLite's integrity
    check of the encrypted copy, and its audit log's size and root."""
    cfg = load_config(NodeConfig, config)
    bar = _Bar(as_json)
    with bar.progress:
        summary = verify_backup(cfg, backup_dir, kek_file=kek_file, progress=bar)
    _emit(
        as_json,
        {**summary.to_json(), "backup": str(backup_dir), "verified": True},
        f"the backup in {backup_dir} verifies: {summary.manifest['children']} children, "
        f"{summary.audit_size} audit leaves, made {summary.manifest['created_at']}",
    )


def restore(
    config: ConfigOpt,
    backup_dir: Annotated[
        Path,
        typer.Option("--from", exists=True, file_okay=False, help="The backup's directory."),
    ],
    kek_file: KekFileOpt = None,
    without_journal: Annotated[
        bool,
        typer.Option(
            "--without-journal",
            help="Restore although the node has no change journal: everything after the "
            "backup is lost and the witnesses will refuse the log (last resort).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore the stopped node from a backup and its change journal.

    The data directory must hold no node. The journal's audit leaves after the backup are
    re-appended as they were (the witnesses see the log they cosigned), its privacy-ledger
    charges and consent withdrawals are applied again, and each change to records after
    the backup is listed (who, when, which child's pseudonym) for staff to enter again.
    The report is also kept as restore-report.json in the data directory.
    """
    cfg = load_config(NodeConfig, config)
    bar = _Bar(as_json)
    with bar.progress:
        report = restore_node(
            cfg, backup_dir, kek_file=kek_file, without_journal=without_journal, progress=bar
        )
    data = report.to_json()
    (cfg.data_dir / "restore-report.json").write_text(json.dumps(data, indent=2) + "\n")
    if as_json:
        typer.echo(json.dumps(data))
        return
    err.print(
        f"restored {cfg.department_id}: {report.leaves_replayed} journaled leaves after the "
        f"backup replayed ({report.audit_size} leaves now), {report.ledger_replayed} "
        f"privacy-ledger charges replayed, {len(report.reapplied)} changes applied again"
    )
    for warning in report.warnings:
        err.print(f"warning: {warning}")
    if report.reenter:
        err.print(f"{len(report.reenter)} changes after the backup must be entered again:")
        for r in report.reenter:
            who = r.child_id or f"pseudonym {r.pseudonym[:16]}…"
            err.print(f"  {r.time}  {r.actor}  {r.action}  {who}")
