"""The erasure part of the SQLCipher store: deleting a child's rows with secure_delete on.

The connection runs with ``secure_delete = ON`` (connection.py), so SQLite overwrites the
deleted cells and freed pages with zeros instead of leaving them in the file; this part
checks that before it deletes anything. Histories, closings, consents and emergency
accesses are append-only by trigger, except for the child named in ``child_erasing``,
which exists only inside :meth:`SqlCipherErasure.erase_child`'s savepoint. Once the
transaction holding an erasure commits, the WAL is checkpointed and truncated
(transaction.py), so the old versions of the erased pages do not linger in ``-wal``.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from node.store.erasure import ErasureStore
from node.store.sqlcipher.transaction import SqlCipherBase
from node.store.types import StoredErasure

_TOMBSTONE: Final = "pseudonym, erased_at, actor, reason"
#: In order: rows that refer to the child's surrogate id, by the child's text id, the child.
_DELETES: Final = (
    "DELETE FROM child_token WHERE child = (SELECT child FROM child_erasing)",
    "DELETE FROM placement WHERE child = (SELECT child FROM child_erasing)",
    "DELETE FROM care_setting WHERE child = (SELECT child FROM child_erasing)",
    "DELETE FROM assessment WHERE child = (SELECT child FROM child_erasing)",
    "DELETE FROM child_event WHERE child = (SELECT child FROM child_erasing)",
    "DELETE FROM child_closure WHERE child = (SELECT child FROM child_erasing)",
    "DELETE FROM consent WHERE child_id = (SELECT child_id FROM child_erasing)",
    "DELETE FROM breakglass WHERE child_id = (SELECT child_id FROM child_erasing)",
    "DELETE FROM child WHERE child_id = (SELECT child_id FROM child_erasing)",
)


class SqlCipherErasure(SqlCipherBase, ErasureStore):
    """Erasing a child's rows, and the tombstones, in SQL tables."""

    def erase_child(self, child_id: str, tombstone: StoredErasure) -> bool:
        """Remove every row of the child and keep its tombstone; True if the tombstone is new."""
        self._not_viewing()
        with self._lock, self._nesting.enter(self._transaction):
            conn = self._conn
            if int(conn.execute("PRAGMA secure_delete").fetchone()[0]) != 1:
                raise RuntimeError("secure_delete is off; refusing to erase")
            conn.execute("SAVEPOINT erase_child")
            try:
                conn.execute(
                    "INSERT INTO child_erasing(child_id, child) "
                    "VALUES (?, (SELECT id FROM child WHERE child_id = ?))",
                    (child_id, child_id),
                )
                for statement in _DELETES:
                    conn.execute(statement)
                conn.execute("DELETE FROM child_erasing")
                added = conn.execute(
                    f"INSERT OR IGNORE INTO child_erasure({_TOMBSTONE}) VALUES (?, ?, ?, ?)",
                    (tombstone.pseudonym, tombstone.erased_at, tombstone.actor, tombstone.reason),
                ).rowcount
            except BaseException:
                conn.execute("ROLLBACK TO erase_child")
                conn.execute("RELEASE erase_child")
                raise
            conn.execute("RELEASE erase_child")
            self._truncate_wal_after_commit = True
            return bool(added)

    def erased_children(self) -> list[StoredErasure]:
        """Every tombstone, by (erased_at, pseudonym)."""
        rows = self._query(f"SELECT {_TOMBSTONE} FROM child_erasure ORDER BY erased_at, pseudonym")
        return [StoredErasure(bytes(p), at, actor, reason) for p, at, actor, reason in rows]

    def erasure_of(self, pseudonym: bytes) -> StoredErasure | None:
        """The tombstone of this pseudonym, or None."""
        rows = self._query(
            f"SELECT {_TOMBSTONE} FROM child_erasure WHERE pseudonym = ?", (pseudonym,)
        )
        if not rows:
            return None
        p, at, actor, reason = rows[0]
        return StoredErasure(bytes(p), at, actor, reason)

    def closed_on_or_before(self, day: dt.date) -> list[tuple[str, dt.date]]:
        """(child id, closed on) of each child whose record closed on or before ``day``."""
        rows = self._query(
            "SELECT c.child_id, x.closed_on FROM child_closure x JOIN child c ON c.id = x.child "
            "WHERE x.closed_on <= ? ORDER BY c.child_id",
            (day.isoformat(),),
        )
        return [(str(cid), dt.date.fromisoformat(on)) for cid, on in rows]

    def born_on_or_before(self, day: dt.date) -> list[str]:
        """The ids of the children born on or before ``day``."""
        rows = self._query(
            "SELECT child_id FROM child WHERE date_of_birth <= ? ORDER BY child_id",
            (day.isoformat(),),
        )
        return [str(cid) for (cid,) in rows]
