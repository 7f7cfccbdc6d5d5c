"""The history part of a store: what happened to each child's record, and its closing.

Why its own concern: the record's life must be kept append-only — every version of every
field with who, when and why — while the children's tables hold only the current state
(what searches, extracts and count tables read). An event's details arrive sealed by the
domain (:mod:`node.records.history`) under the child's key, so the store never sees a
name or a reason; it keeps who (the actor's name), when and what kind of step. A closed
record stays; its closing date decides which snapshots still count the child.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Collection, Sequence

from node.store.transactional import Transactional
from node.store.types import StoredClosure, StoredEvent


class HistoryStore(Transactional):
    """Where a node keeps its children's histories and closings.

    Contract (every implementation), besides :class:`~node.store.transactional.Transactional`'s:

    - ``add_event`` MUST keep the event exactly and forever: events are never changed or
      removed; (child, seq) is unique (AlreadyExists, changing nothing, if it is taken) and
      NotFound for an unknown child. ``last_event_seq`` is the largest seq held for the
      child, 0 if none.
    - ``add_first_events`` adds one event numbered 1 to each given child (the bulk path of
      an import, in the same transaction as the children); NotFound for an unknown child.
    - ``events`` returns the child's events by seq (empty for an unknown child).
    - ``close_child`` closes a record once: AlreadyExists if it is closed, NotFound if the
      child is unknown; a closing is never changed or removed. ``closure`` is the record's
      closing, or None while it is open; ``closed_children`` exactly those of the given
      ids whose record is closed.
    - Count tables (:meth:`~node.store.records.RecordsStore.count_table`) MUST NOT count a
      child whose record closed on or before the reference date.
    """

    @abstractmethod
    def add_event(self, event: StoredEvent) -> None:
        """Append one event to a child's history."""

    @abstractmethod
    def add_first_events(self, child_ids: Sequence[str], at: str, actor: str, kind: str) -> None:
        """Append event 1 of ``kind`` (no details) to each of ``child_ids``."""

    @abstractmethod
    def last_event_seq(self, child_id: str) -> int:
        """The largest event number of the child's history (0 for none)."""

    @abstractmethod
    def events(self, child_id: str) -> list[StoredEvent]:
        """The child's events, by seq."""

    @abstractmethod
    def close_child(self, closure: StoredClosure) -> None:
        """Close the child's record from ``closure.closed_on`` on."""

    @abstractmethod
    def closure(self, child_id: str) -> StoredClosure | None:
        """The record's closing, or None while it is open."""

    @abstractmethod
    def closed_children(self, child_ids: Collection[str]) -> set[str]:
        """Those of ``child_ids`` whose record is closed (one look-up for a search page)."""
