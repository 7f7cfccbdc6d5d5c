"""`childreg node rekey-db` and `rotate-key`: the node's key commands beyond `rotate-kek`.

Kept apart from tools/cli/node.py so the key commands grow without touching the node's
everyday commands; :func:`add_to` adds them to the `childreg node` group. Each runs on the
node's host with the node stopped and leaves one audit leaf naming the operator.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from childreg.config import load_config
from node.config import NodeConfig
from node.server import rekey_db, rotate_key
from tools.cli.node import _done
from tools.cli.options import ConfigOpt, JsonOpt


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


class Which(StrEnum):
    """The signing keys a node can rotate."""

    audit = "audit"
    extract = "extract"
    upload = "upload"


_PINNED_BY = {
    "audit": "auditors and witnesses keep the key they pinned: the node's checkpoints carry "
    "the statement, and they follow it to the new key",
    "extract": "schools keep the key they pinned: each extract carries the statement, and "
    "they follow it to the new key",
    "upload": "give the statistics authority the new roster entry (`childreg node "
    "roster-entry`) to sign into the roster: until the new roster is in place this node "
    "takes no part in secure rounds",
}


def rotate_key_cmd(
    config: ConfigOpt,
    which: Annotated[
        Which, typer.Option("--which", help="The signing key to replace: audit, extract or upload.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Replace one of the node's signing keys and announce the change.

    The audit key signs the log's checkpoints, the extract key schools' extracts, the
    upload key masked secure-aggregation uploads. The new key is the next generation
    derived from the keyring; a key-transition statement signed by the old and the new
    key (which key, from which log size and time) is kept and published, so whoever
    pinned the old key still verifies old material and follows to the new one. Run it on
    the node's host with the node stopped. Leaves one keys.rotate_signing leaf.
    """
    cfg = load_config(NodeConfig, config)
    summary = rotate_key(cfg, which.value)
    _done(
        as_json,
        summary.to_json(),
        f"the {summary.which} key is now generation {summary.to_generation}: {summary.new_key} "
        f"(from log size {summary.from_size}); start the node; {_PINNED_BY[summary.which]}",
    )


def add_to(app: typer.Typer) -> None:
    """Add the key commands to the `childreg node` group."""
    app.command(
        "rekey-db",
        epilog="Example: systemctl stop childreg-node && childreg node rekey-db --config "
        "/etc/childreg/node.toml && systemctl start childreg-node, then make a new backup "
        "(docs/operations.md).",
    )(rekey_db_cmd)
    app.command(
        "rotate-key",
        epilog="Example: systemctl stop childreg-node && childreg node rotate-key --config "
        "/etc/childreg/node.toml --which audit && systemctl start childreg-node "
        "(docs/operations.md).",
    )(rotate_key_cmd)
