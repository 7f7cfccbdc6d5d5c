"""An online, consistent copy of the node's SQLCipher file, and a read-only look at a copy.

Why: a backup must not stop the node, must be one moment of the database (a change and
its audit leaf both in it or both not), and must be as encrypted as the live file. SQLite's
online backup API does all three: a separate connection, keyed with the same raw key,
holds one read transaction on the live file (WAL: the serving node's writer goes on)
and copies its pages, step by step, into a new file keyed the same way, so pages are
decrypted and re-encrypted by SQLCipher and never exist in the clear on disk. Holding the
read transaction across the steps keeps the copy one snapshot although the node writes
meanwhile. The copy is switched out of WAL mode, so it is one self-contained file.

:class:`CopyReader` opens such a copy read-only (no migrations, no WAL, nothing written),
for verifying a backup without changing a byte of it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import sqlcipher3

from node.store.sqlcipher.connection import _key

__all__ = ["CopyReader", "online_copy"]

#: Pages copied per step (4 MiB of 4 KiB pages) between progress reports.
_PAGES_PER_STEP: Final = 1024

#: Called with (pages copied, pages in all).
PageProgress = Callable[[int, int], None]


def _connect(path: Path, key_hex: str, *, readonly: bool = False) -> Any:
    target = f"file:{path}?mode=ro" if readonly else str(path)
    conn = sqlcipher3.connect(target, uri=readonly, isolation_level=None, check_same_thread=False)
    try:
        _key(conn, path, key_hex)
    except BaseException:
        conn.close()
        raise
    return conn


def online_copy(
    source: Path, key_hex: str, target: Path, progress: PageProgress | None = None
) -> None:
    """Copy the live database at ``source`` into a new file ``target`` (same key, mode
    0600), as one snapshot, while other connections go on writing."""
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    src = _connect(Path(source), key_hex)
    try:
        dst = _connect(Path(target), key_hex)
        try:
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot
            try:
                src.backup(
                    dst,
                    pages=_PAGES_PER_STEP,
                    progress=None
                    if progress is None
                    else lambda _status, remaining, total: progress(total - remaining, total),
                )
            finally:
                src.execute("COMMIT")
            dst.execute("PRAGMA journal_mode = DELETE")  # one file, no -wal beside it
        finally:
            dst.close()
    except BaseException:
        src.close()
        for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        raise
    src.close()
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CopyReader:
    """A backup's database opened read-only with its key (KeyProblem if the key is wrong)."""

    def __init__(self, path: Path, key_hex: str) -> None:
        self._conn = _connect(Path(path), key_hex, readonly=True)

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        row = self._conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def integrity(self, *, thorough: bool = True) -> str:
        """SQLite's integrity check ("ok" when the file is sound); not ``thorough``: its
        quick check (every page and record, not whether each index matches its table)."""
        return str(self._one("PRAGMA integrity_check" if thorough else "PRAGMA quick_check"))

    def audit_size(self) -> int:
        """How many audit leaves the copy holds."""
        return int(self._one("SELECT coalesce(max(seq) + 1, 0) FROM audit_leaf"))

    def audit_hash(self, level: int, index: int) -> bytes:
        """A stored Merkle subtree hash (KeyError if absent)."""
        found = self._one("SELECT hash FROM audit_hash WHERE level = ? AND idx = ?", (level, index))
        if found is None:
            raise KeyError((level, index))
        return bytes(found)

    def audit_leaves(self, start: int, end: int) -> list[bytes]:
        """Leaf bytes with indices in [start, end)."""
        rows = self._conn.execute(
            "SELECT body FROM audit_leaf WHERE seq >= ? AND seq < ? ORDER BY seq", (start, end)
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def counts(self) -> dict[str, int]:
        """How many children, ledger entries and consents the copy holds."""
        return {
            "children": int(self._one("SELECT count(*) FROM child")),
            "ledger_entries": int(self._one("SELECT count(*) FROM privacy_ledger")),
            "consents": int(self._one("SELECT count(*) FROM consent")),
        }

    def kek_generation(self) -> int:
        """The KEK generation that wraps the copy's child keys."""
        return int(self._one("SELECT generation FROM kek_state WHERE id = 1"))

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> CopyReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
