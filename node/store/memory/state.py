"""The one state every part of the in-memory store works on, and its transaction.

Rollback of an ``atomic()`` block restores a snapshot of the whole state taken when the
outermost block starts, so the records, the ledger, the audit log and the consents must
live in one :class:`_State` under one re-entrant lock: a change and its audit leaf roll
back together. A read from another thread waits while an ``atomic()`` block or a
``read_view()`` is open. Each concern's methods (records.py, ledger.py, audit.py,
consents.py) extend :class:`MemoryBase`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from childreg.secagg.roster import Participation
from node.store.transactional import BlockNesting, Transactional
from node.store.types import (
    LedgerEntry,
    StoredAssessment,
    StoredBreakGlass,
    StoredCareSetting,
    StoredChild,
    StoredClosure,
    StoredConsent,
    StoredErasure,
    StoredEvent,
    StoredPlacement,
)


@dataclass
class _State:
    children: dict[str, StoredChild] = field(default_factory=dict)
    by_hash: dict[bytes, str] = field(default_factory=dict)
    placements: dict[str, dict[str, StoredPlacement]] = field(default_factory=dict)
    care: dict[str, dict[dt.date, StoredCareSetting]] = field(default_factory=dict)
    assessments: dict[str, list[StoredAssessment]] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    hashes: dict[tuple[int, int], bytes] = field(default_factory=dict)
    checkpoints: dict[int, str] = field(default_factory=dict)
    consents: dict[str, StoredConsent] = field(default_factory=dict)
    breakglass: list[StoredBreakGlass] = field(default_factory=list)
    participation: dict[str, Participation] = field(default_factory=dict)
    tokens_of: dict[str, set[bytes]] = field(default_factory=dict)  # the search index
    by_token: dict[bytes, set[str]] = field(default_factory=dict)
    events: dict[str, list[StoredEvent]] = field(default_factory=dict)  # histories
    closures: dict[str, StoredClosure] = field(default_factory=dict)
    erasures: dict[bytes, StoredErasure] = field(default_factory=dict)  # by pseudonym
    transitions: list[tuple[str, str]] = field(default_factory=list)  # signing-key changes

    def copy(self) -> _State:
        return _State(
            dict(self.children),
            dict(self.by_hash),
            {k: dict(v) for k, v in self.placements.items()},
            {k: dict(v) for k, v in self.care.items()},
            {k: list(v) for k, v in self.assessments.items()},
            list(self.ledger),
            list(self.leaves),
            dict(self.hashes),
            dict(self.checkpoints),
            dict(self.consents),
            list(self.breakglass),
            dict(self.participation),
            {k: set(v) for k, v in self.tokens_of.items()},
            {k: set(v) for k, v in self.by_token.items()},
            {k: list(v) for k, v in self.events.items()},
            dict(self.closures),
            dict(self.erasures),
            list(self.transitions),
        )


def copy_assessment(a: StoredAssessment, assessment_id: int | None = None) -> StoredAssessment:
    """A copy that shares no mutable part with ``a`` (its sealed fields are a new dict)."""
    return dataclasses.replace(
        a,
        assessment_id=a.assessment_id if assessment_id is None else assessment_id,
        sealed_fields=dict(a.sealed_fields),
    )


class MemoryBase(Transactional):
    """The state, its lock and its transaction, shared by every part of the memory store."""

    def __init__(self) -> None:
        self._state = _State()
        self._lock = threading.RLock()
        self._nesting = BlockNesting()
        self._viewer: int | None = None  # the thread inside read_view(), if any
        self._closed = False

    def _live(self) -> _State:
        if self._closed:
            raise RuntimeError("the store is closed")
        return self._state

    def _writable(self) -> _State:
        """The state to change (caller holds the lock); RuntimeError inside a read view."""
        if self._viewer == threading.get_ident():
            raise RuntimeError("cannot write inside read_view()")
        return self._live()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A block whose writes commit together; nested blocks join the outermost one."""
        with self._lock:
            self._writable()
            with self._nesting.enter(self._snapshot):
                yield

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        snapshot = self._live().copy()
        try:
            yield
        except BaseException:
            self._state = snapshot
            raise

    @contextmanager
    def read_view(self) -> Iterator[None]:
        """Holds the lock, so no other thread changes anything until the block ends."""
        with self._lock:
            me = threading.get_ident()
            if me in (self._viewer, self._nesting.owner):
                yield
                return
            self._live()
            self._viewer = me
            try:
                yield
            finally:
                self._viewer = None

    def close(self) -> None:
        """Drop every record; the store is unusable afterwards."""
        with self._lock:
            self._state = _State()
            self._closed = True
