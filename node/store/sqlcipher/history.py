"""The history part of the SQLCipher store: ``child_event`` and ``child_closure``.

Both tables are append-only, enforced by triggers (migration 9) as the consents and
break-glass accesses are: an event or a closing is never updated or deleted. Events are
keyed by (child, seq) so a child's history is one range scan; a closing is keyed by the
child, so the count tables' "closed by the reference date?" is one primary-key seek.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Final

import sqlcipher3

from childreg.errors import AlreadyExists, NotFound
from node.store.history import HistoryStore
from node.store.sqlcipher.transaction import SqlCipherBase
from node.store.types import StoredClosure, StoredEvent

_ADD_EVENT: Final = (
    "INSERT INTO child_event(child, seq, at, actor, kind, sealed) "
    "SELECT id, ?, ?, ?, ?, ? FROM child WHERE child_id = ?"
)
_IN_CHUNK: Final = 500  # child ids per IN (...) list
_CLOSE: Final = (
    "INSERT INTO child_closure(child, closed_on, reason) "
    "SELECT id, ?, ? FROM child WHERE child_id = ?"
)


class SqlCipherHistory(SqlCipherBase, HistoryStore):
    """Histories and closings in two append-only tables (migration 9)."""

    def add_event(self, event: StoredEvent) -> None:
        """Append one event to a child's history."""
        self._not_viewing()
        e = event
        with self._lock:  # one statement: atomic by itself
            try:
                cursor = self._conn.execute(
                    _ADD_EVENT, (e.seq, e.at, e.actor, e.kind, e.sealed, e.child_id)
                )
            except sqlcipher3.IntegrityError:
                raise AlreadyExists("that history event is already recorded") from None
            if cursor.rowcount == 0:
                raise NotFound("no child with that child_id")

    def add_first_events(self, child_ids: Sequence[str], at: str, actor: str, kind: str) -> None:
        """Append event 1 of ``kind`` (no details) to each of ``child_ids``."""
        self._not_viewing()
        if not child_ids:
            return
        with self._lock, self._nesting.enter(self._transaction):
            conn = self._conn
            conn.execute("SAVEPOINT first_events")
            try:
                done = 0
                for child_id in child_ids:
                    cursor = conn.execute(_ADD_EVENT, (1, at, actor, kind, None, child_id))
                    done += cursor.rowcount
                if done != len(child_ids):
                    raise NotFound("no child with that child_id")
            except BaseException as exc:
                conn.execute("ROLLBACK TO first_events")
                conn.execute("RELEASE first_events")
                if isinstance(exc, sqlcipher3.IntegrityError):
                    raise AlreadyExists("that history event is already recorded") from None
                raise
            conn.execute("RELEASE first_events")

    def last_event_seq(self, child_id: str) -> int:
        """The largest event number of the child's history (0 for none)."""
        rows = self._query(
            "SELECT coalesce(max(e.seq), 0) FROM child_event e "
            "JOIN child c ON c.id = e.child WHERE c.child_id = ?",
            (child_id,),
        )
        return int(rows[0][0])

    def events(self, child_id: str) -> list[StoredEvent]:
        """The child's events, by seq."""
        rows = self._query(
            "SELECT e.seq, e.at, e.actor, e.kind, e.sealed FROM child_event e "
            "JOIN child c ON c.id = e.child WHERE c.child_id = ? ORDER BY e.seq",
            (child_id,),
        )
        return [
            StoredEvent(child_id, int(seq), at, actor, kind, None if sealed is None else sealed)
            for seq, at, actor, kind, sealed in rows
        ]

    def close_child(self, closure: StoredClosure) -> None:
        """Close the child's record from ``closure.closed_on`` on."""
        self._not_viewing()
        c = closure
        with self._lock:  # one statement: atomic by itself
            try:
                cursor = self._conn.execute(_CLOSE, (c.closed_on.isoformat(), c.reason, c.child_id))
            except sqlcipher3.IntegrityError:
                raise AlreadyExists("the record is already closed") from None
            if cursor.rowcount == 0:
                raise NotFound("no child with that child_id")

    def closure(self, child_id: str) -> StoredClosure | None:
        """The record's closing, or None while it is open."""
        rows = self._query(
            "SELECT x.closed_on, x.reason FROM child_closure x "
            "JOIN child c ON c.id = x.child WHERE c.child_id = ?",
            (child_id,),
        )
        if not rows:
            return None
        closed_on, reason = rows[0]
        return StoredClosure(child_id, dt.date.fromisoformat(closed_on), reason)

    def closed_children(self, child_ids: Collection[str]) -> set[str]:
        """Those of ``child_ids`` whose record is closed (chunked IN look-ups)."""
        ids = list(set(child_ids))
        found: set[str] = set()
        for at in range(0, len(ids), _IN_CHUNK):
            chunk = ids[at : at + _IN_CHUNK]
            rows = self._query(
                "SELECT c.child_id FROM child_closure x JOIN child c ON c.id = x.child "
                f"WHERE c.child_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            found.update(child_id for (child_id,) in rows)
        return found
