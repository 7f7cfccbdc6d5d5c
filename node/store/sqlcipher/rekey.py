"""Changing the SQLCipher database key of a closed store file (``PRAGMA rekey``).

Why its own module: the store's connections deny every key pragma (connection.py's
authorizer), so a rekey runs on a connection of its own, with no store open on the file
(node/rekey.py holds the node's data-directory lock). In WAL mode SQLCipher rewrites every
page, free pages included, under the new key in one write transaction: the pages go to the
WAL and its commit frame is the commit point. Killed before it, the file opens with the
old key only; after it, with the new key only (the committed WAL is replayed), which a test
checks by killing a subprocess at each step. The WAL is checkpointed and truncated before
and after, so no page under the old key is left in it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlcipher3

from childreg.errors import FailedPrecondition, KeyProblem
from node.store.sqlcipher.connection import _PRAGMAS, _key

__all__ = ["key_opens", "rekey_file"]


def _open(path: Path, key_hex: str) -> Any:
    conn = sqlcipher3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        _key(conn, path, key_hex)
        for pragma in _PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")
    except BaseException:
        conn.close()
        raise
    return conn


def key_opens(path: Path, key_hex: str) -> bool:
    """Whether ``key_hex`` (64 hex digits) opens the database file at ``path``."""
    try:
        conn = _open(Path(path), key_hex)
    except KeyProblem:
        return False
    conn.close()
    return True


def rekey_file(
    path: Path, old_hex: str, new_hex: str, step: Callable[[str], None] | None = None
) -> int:
    """Re-encrypt every page of the closed database at ``path`` from ``old_hex`` to
    ``new_hex``; returns its page count. ``step`` is called at ``before-rekey`` and at
    ``after-rekey`` (committed, WAL not yet checkpointed). KeyProblem if ``old_hex`` does
    not open it, or if the new key does not open it afterwards."""
    path = Path(path)
    mark = step or (lambda _: None)
    conn = _open(path, old_hex)
    try:
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode != "wal":
            raise FailedPrecondition(f"{path} is not in WAL journal mode (found {mode})")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        mark("before-rekey")
        conn.execute(f"PRAGMA rekey = \"x'{new_hex}'\"").fetchall()
        mark("after-rekey")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        with contextlib.suppress(sqlcipher3.Error):
            conn.close()
    if not key_opens(path, new_hex):
        raise KeyProblem(
            f"SQLCipher did not rekey {path}: the new key does not open it",
            hint="the old key still opens it; check the disk (space, errors) and try again",
        )
    return pages
