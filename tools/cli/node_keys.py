"""`childreg node rekey-db` (and the node's other key commands beyond `rotate-kek`).

Kept apart from tools/cli/node.py so the key commands grow without touching the node's
everyday commands; :func:`add_to` adds them to the `childreg node` group. Each runs on the
node's host with the node stopped and leaves one audit leaf naming the operator.
"""

from __future__ import annotations

import json

import typer

from childreg.config import load_config
from node.config import NodeConfig
from node.server import rekey_db
from tools.cli.console import err
from tools.cli.options import ConfigOpt, JsonOpt


def _done(as_json: bool, data: dict[str, object], text: str) -> None:
    if as_json:
        typer.echo(json.dumps(data))
    else:
        err.print(text)


def rekey_db_cmd(config: ConfigOpt, as_json: JsonOpt = False) -> None:
    """Re-encrypt the node's database under a new random database key (SQLCipher rekey).

    Run it on the node's host with the node stopped (it refuses while the node serves).
    The KEK stays; the new database key is wrapped under it in keyring.json. Afterwards
    no earlier keyring.json (from a backup) opens the database: make a new backup.
    Crash-safe: killed at any point, the node opens with exactly one of the two database
    keys; running the command again (or starting the node) finishes or undoes it. Leaves
    one keys.rekey_db audit leaf naming the operator.
    """
    cfg = load_config(NodeConfig, config)
    summary = rekey_db(cfg)
    text = (
        "finished an interrupted rekey: the database opens with the new key only"
        if summary.finished_interrupted
        else f"re-encrypted {summary.pages} database pages under a new database key in "
        f"{summary.seconds:.1f} s"
    )
    _done(
        as_json,
        summary.to_json(),
        f"{text}; start the node, then replace every backup of keyring.json with a new "
        "backup (old keyrings no longer open the database)",
    )


def add_to(app: typer.Typer) -> None:
    """Add the key commands to the `childreg node` group."""
    app.command(
        "rekey-db",
        epilog="Example: systemctl stop childreg-node && childreg node rekey-db --config "
        "/etc/childreg/node.toml && systemctl start childreg-node, then make a new backup "
        "(docs/operations.md).",
    )(rekey_db_cmd)
