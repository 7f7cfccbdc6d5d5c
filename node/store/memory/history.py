"""The history part of the in-memory store: each child's events and its record's closing."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from childreg.errors import AlreadyExists, NotFound
from node.store.history import HistoryStore
from node.store.memory.state import MemoryBase
from node.store.types import StoredClosure, StoredEvent


class MemoryHistory(MemoryBase, HistoryStore):
    """Events in a list per child; closings in a dictionary."""

    def add_event(self, event: StoredEvent) -> None:
        """Append one event to a child's history."""
        with self._lock:
            s = self._writable()
            if event.child_id not in s.children:
                raise NotFound("no child with that child_id")
            events = s.events.setdefault(event.child_id, [])
            if any(e.seq == event.seq for e in events):
                raise AlreadyExists("that history event is already recorded")
            events.append(event)
            events.sort(key=lambda e: e.seq)

    def add_first_events(self, child_ids: Sequence[str], at: str, actor: str, kind: str) -> None:
        """Append event 1 of ``kind`` (no details) to each of ``child_ids``."""
        with self._lock:
            s = self._writable()
            if any(c not in s.children for c in child_ids):
                raise NotFound("no child with that child_id")
            if any(s.events.get(c) for c in child_ids):
                raise AlreadyExists("that history event is already recorded")
            for child_id in child_ids:
                s.events[child_id] = [StoredEvent(child_id, 1, at, actor, kind, None)]

    def last_event_seq(self, child_id: str) -> int:
        """The largest event number of the child's history (0 for none)."""
        with self._lock:
            events = self._live().events.get(child_id, [])
            return events[-1].seq if events else 0

    def events(self, child_id: str) -> list[StoredEvent]:
        """The child's events, by seq."""
        with self._lock:
            return list(self._live().events.get(child_id, []))

    def close_child(self, closure: StoredClosure) -> None:
        """Close the child's record from ``closure.closed_on`` on."""
        with self._lock:
            s = self._writable()
            if closure.child_id not in s.children:
                raise NotFound("no child with that child_id")
            if closure.child_id in s.closures:
                raise AlreadyExists("the record is already closed")
            s.closures[closure.child_id] = closure

    def closure(self, child_id: str) -> StoredClosure | None:
        """The record's closing, or None while it is open."""
        with self._lock:
            return self._live().closures.get(child_id)

    def closed_children(self, child_ids: Collection[str]) -> set[str]:
        """Those of ``child_ids`` whose record is closed."""
        with self._lock:
            closures = self._live().closures
            return {c for c in child_ids if c in closures}
