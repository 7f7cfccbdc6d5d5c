"""An online, consistent copy of the node's SQLCipher file, and a read-only look at a copy.

Why: a backup must not stop the node, must be one moment of the database (a change and
its audit leaf both in it or both not), and must be as encrypted as the live file. The
copy is of the encrypted bytes themselves (the backup keeps the same database key, so
its pages are the live file's ciphertext, never decrypted on the way), made consistent by
SQLite's write-ahead log:

1. a connection of our own opens a read transaction on the live file and holds it. In WAL
   mode that does not stop the node's writer, but it pins the log: no checkpoint copies
   a frame past our snapshot into the database file, and the log is not restarted;
2. the database file's bytes are copied, then the log's (``-wal``). A page the node's
   checkpointer wrote into the file meanwhile is one whose frame is in the copied log;
   every commit after our snapshot is in the log too, and a frame half-written at the
   moment of the copy fails its checksum and is ignored;
3. the copy is opened with the key: SQLite's recovery replays the copied log up to its
   last complete commit — one committed state of the database, at or after the snapshot
   — and it is folded into the file and switched out of WAL mode, so the backup is one
   self-contained file. Only the log's pages are decrypted and encrypted again here;
4. once its read has ended (before step 3), the copy checkpoints and truncates the live
   log if no reader needs it any more, so an erasure the node committed during the copy
   (whose own truncation the pinned read held back) leaves no old page of the child in
   ``-wal``.

``backup verify`` proves each copy (integrity check, audit root); the kill -9 test
(tests/e2e/test_backup_kill9.py) backs up under writes and verifies every copy.
:class:`CopyReader` opens such a copy read-only (no migrations, no WAL, nothing
written), for verifying a backup without changing a byte of it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import sqlcipher3

from childreg.secretfile import fsync_path
from node.store.sqlcipher.connection import _key

__all__ = ["CopyReader", "online_copy"]

_CHUNK: Final = 16 << 20  # bytes copied between progress reports

#: Called with (bytes copied, bytes in all).
ByteProgress = Callable[[int, int], None]


def _connect(path: Path, key_hex: str, *, readonly: bool = False) -> Any:
    target = f"file:{path}?mode=ro" if readonly else str(path)
    conn = sqlcipher3.connect(target, uri=readonly, isolation_level=None, check_same_thread=False)
    try:
        _key(conn, path, key_hex)
    except BaseException:
        conn.close()
        raise
    return conn


def _copy_bytes(pairs: list[tuple[Path, Path]], progress: ByteProgress | None) -> None:
    """Copy each (source, target) file in the kernel (sendfile), reporting bytes copied."""
    total = sum(src.stat().st_size for src, _ in pairs)
    done = 0
    for src, dst in pairs:
        fin = os.open(src, os.O_RDONLY)
        try:
            fout = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                offset = 0
                while sent := os.sendfile(fout, fin, offset, _CHUNK):
                    offset += sent
                    done += sent
                    if progress is not None:
                        progress(min(done, total), total)
            finally:
                os.close(fout)
        finally:
            os.close(fin)


def _release_log(conn: Any) -> None:
    """Once the copy's read has ended, checkpoint and truncate the live log if no other
    reader needs its frames (best effort: a busy log is left to the node).

    An erasure the node committed during the copy could not truncate the log while the
    copy pinned it (node/store/sqlcipher/transaction.py leaves the truncation pending);
    the node retries after its next commit or read, and this truncation, from the copy's
    side, does not wait for that: the erased child's old page versions leave ``-wal`` as
    the backup ends.
    """
    with contextlib.suppress(sqlcipher3.OperationalError):
        busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if not busy and frames > 0 and done == frames:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()


def online_copy(
    source: Path, key_hex: str, target: Path, progress: ByteProgress | None = None
) -> None:
    """Copy the live database at ``source`` into a new file ``target`` (same key, mode
    0600), as one committed state, while other connections go on writing (see module)."""
    source, target = Path(source), Path(target)
    leftovers = (target, Path(f"{target}-wal"), Path(f"{target}-shm"))
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        src = _connect(source, key_hex)
        try:
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # pins the log
            pairs = [(source, target)]
            wal = Path(f"{source}-wal")
            if wal.exists():
                pairs.append((wal, Path(f"{target}-wal")))
            _copy_bytes(pairs, progress)
            src.execute("COMMIT")
            _release_log(src)
        finally:
            src.close()
        dst = _connect(target, key_hex)  # recovery replays the copied log
        try:
            dst.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            dst.execute("PRAGMA journal_mode = DELETE").fetchone()  # one file, no -wal
        finally:
            dst.close()
        for extra in leftovers[1:]:
            extra.unlink(missing_ok=True)
        fsync_path(target)
    except BaseException:
        for leftover in leftovers:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        raise


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
