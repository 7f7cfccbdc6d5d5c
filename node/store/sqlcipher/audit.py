"""The audit part of the SQLCipher store: leaves, Merkle rows and checkpoints in SQL tables.

An append is one leaf insert that checks the size itself (no read-then-write race) plus
its Merkle rows, inside the caller's ``atomic()`` block when there is one: the same
transaction as the change the leaf records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import sqlcipher3

from childreg.errors import AlreadyExists
from node.store.audit import AuditStore
from node.store.sqlcipher.transaction import SqlCipherBase

_APPEND_LEAF: Final = (
    "INSERT INTO audit_leaf(seq, body) SELECT ?, ? "
    "WHERE ? = (SELECT coalesce(max(seq) + 1, 0) FROM audit_leaf)"
)


class SqlCipherAudit(SqlCipherBase, AuditStore):
    """The audit log's leaves, Merkle rows and checkpoints."""

    def audit_size(self) -> int:
        """How many leaves the audit log holds."""
        rows = self._query("SELECT coalesce(max(seq) + 1, 0) FROM audit_leaf")
        return int(rows[0][0])

    def audit_append(self, body: bytes, rows: Sequence[tuple[int, int, bytes]], index: int) -> int:
        """Append a leaf (index = the current size) with its new Merkle rows; its index."""
        with self.atomic():
            try:  # the insert checks the size itself: one statement, not a read and a write
                if self._conn.execute(_APPEND_LEAF, (index, body, index)).rowcount != 1:
                    raise AlreadyExists("an audit leaf would be overwritten or skipped")
                self._conn.executemany(
                    "INSERT INTO audit_hash(level, idx, hash) VALUES (?, ?, ?)", list(rows)
                )
            except sqlcipher3.IntegrityError:
                raise AlreadyExists("an audit row would be overwritten") from None
            return index

    def audit_hash(self, level: int, index: int) -> bytes:
        """A stored complete-subtree hash; KeyError if absent (a corruption signal)."""
        rows = self._query(
            "SELECT hash FROM audit_hash WHERE level = ? AND idx = ?", (level, index)
        )
        if not rows:
            raise KeyError((level, index))
        return bytes(rows[0][0])

    def audit_leaves(self, start: int, end: int) -> list[bytes]:
        """Leaf bytes with indices in [start, end)."""
        rows = self._query(
            "SELECT body FROM audit_leaf WHERE seq >= ? AND seq < ? ORDER BY seq", (start, end)
        )
        return [bytes(r[0]) for r in rows]

    def audit_put_checkpoint(self, size: int, note: str) -> None:
        """Keep a signed checkpoint (one per size; a second for one size is refused)."""
        self._not_viewing()
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO audit_checkpoint(size, note) VALUES (?, ?)", (size, note)
                )
            except sqlcipher3.IntegrityError:
                raise AlreadyExists("a checkpoint of this size exists") from None

    def audit_checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        """The checkpoint of ``size`` (default: the latest), or None."""
        if size is None:
            rows = self._query("SELECT size, note FROM audit_checkpoint ORDER BY size DESC LIMIT 1")
        else:
            rows = self._query("SELECT size, note FROM audit_checkpoint WHERE size = ?", (size,))
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def add_key_transition(self, which: str, note: str) -> None:
        """Keep a signed key-transition statement of the ``which`` signing key."""
        with self.atomic():
            self._conn.execute(
                "INSERT INTO key_transition(which, note) VALUES (?, ?)", (which, note)
            )

    def key_transitions(self) -> list[tuple[str, str]]:
        """Every key-transition statement kept, as (which key, signed note), oldest first."""
        rows = self._query("SELECT which, note FROM key_transition ORDER BY seq")
        return [(str(which), str(note)) for which, note in rows]
