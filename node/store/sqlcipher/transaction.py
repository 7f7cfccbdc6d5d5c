"""The transaction every part of the SQLCipher store shares: one writer, one reader, two locks.

Two connections (made by :mod:`node.store.sqlcipher.connection`): the writer, guarded by a
re-entrant lock (an ``atomic()`` block holds it and one ``BEGIN IMMEDIATE`` transaction
throughout), and a read-only reader with its own lock. Reads by the thread inside
``atomic()`` use the writer, to see the block's own writes; reads by other threads use the
reader, which in WAL mode sees the last committed state without waiting for an open write
transaction (a long import does not stall statistics or look-ups). Each concern's methods
(records.py, ledger.py, audit.py, consents.py) extend :class:`SqlCipherBase` and write
through its one writer, so a change and its audit leaf commit in one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from node.store.sqlcipher.connection import open_connections
from node.store.transactional import BlockNesting, Transactional


class SqlCipherBase(Transactional):
    """The connections, locks and transaction shared by every part of the SQLCipher store."""

    def __init__(self, writer: Any, reader: Any) -> None:
        self._conn = writer
        self._reader = reader
        self._lock = threading.RLock()  # the writer
        self._read_lock = threading.RLock()  # the reader
        self._nesting = BlockNesting()
        self._viewer: int | None = None  # the thread inside read_view(), if any
        self._closed = False
        #: Set by a write whose old page versions must not linger in the WAL (an erasure):
        #: the transaction that commits it then checkpoints and truncates the WAL.
        self._truncate_wal_after_commit = False
        #: A truncation a reader held back: retried after each commit and each read's end.
        self._truncate_wal_pending = False

    @classmethod
    def open(cls, path: Path, key_hex: str, *, create: bool = False) -> Self:
        """Open (or with ``create`` make) the database at ``path`` with a 64-hex-digit key."""
        return cls(*open_connections(path, key_hex, create=create))

    def _not_viewing(self) -> None:
        if self._viewer == threading.get_ident():
            raise RuntimeError("cannot write inside read_view()")

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction; nested blocks join the outermost one."""
        self._not_viewing()
        with self._lock, self._nesting.enter(self._transaction):
            yield

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            self._truncate_wal_after_commit = False
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        if self._truncate_wal_after_commit or self._truncate_wal_pending:
            self._truncate_wal_after_commit = False
            self._truncate_wal()

    def _truncate_wal(self) -> None:
        """Checkpoint and truncate the WAL (under the writer's lock, outside a transaction).

        A reader inside a read transaction keeps the frames it reads, and a WAL that is
        only reused keeps its old frames past the new ones, so a truncation that could not
        finish stays pending and is retried after the next commit or read.
        """
        busy, frames, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        self._truncate_wal_pending = bool(busy) or frames != 0

    def _retry_truncate_wal(self) -> None:
        """Retry a pending truncation now if the writer is free (never waits for it)."""
        if not self._truncate_wal_pending or not self._lock.acquire(blocking=False):
            return
        try:
            if self._nesting.owner is None and not self._closed:
                self._truncate_wal()
        finally:
            self._lock.release()

    @contextmanager
    def read_view(self) -> Iterator[None]:
        """One read transaction on the reader (or, inside ``atomic()``, the block's own)."""
        me = threading.get_ident()
        if me in (self._nesting.owner, self._viewer):
            yield
            return
        with self._read_lock:
            self._reader.execute("BEGIN")
            self._viewer = me
            try:
                yield
            finally:
                self._viewer = None
                if self._reader.in_transaction:
                    self._reader.execute("COMMIT")
        self._retry_truncate_wal()

    def _query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        """Every row of a read: on the writer inside this thread's atomic(), else the reader."""
        if self._nesting.owner == threading.get_ident():
            return self._conn.execute(sql, params).fetchall()  # type: ignore[no-any-return]
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the reader, checkpoint and truncate the WAL, close; unusable afterwards."""
        with self._lock, self._read_lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._reader.close()
            finally:
                try:
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    self._conn.close()
