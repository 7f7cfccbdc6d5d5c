"""The one transaction every part of a store shares: ``atomic()``, ``read_view()``, ``close()``.

A store is split by concern (records, ledger, audit, consents), but a change and the audit
leaf that records it must commit together or not at all: the audited service writes both in
one ``atomic()`` block. So every concern's interface extends :class:`Transactional`, and an
implementation composes its concerns over one state (one lock, one connection), never one per
concern. :class:`BlockNesting` is the nesting of ``atomic()`` blocks both implementations use.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager


class BlockNesting:
    """How both stores nest ``atomic()`` blocks: inner blocks join the outermost one.

    Use it while holding the store's re-entrant lock, so one thread at a time is inside.
    Only the outermost :meth:`enter` runs ``outermost()``: a context manager that begins a
    transaction and, on leaving, commits it or, if an exception is leaving, rolls it back.
    ``owner`` is the thread inside the outermost block (None when there is none).
    """

    __slots__ = ("_depth", "owner")

    def __init__(self) -> None:
        self._depth = 0
        self.owner: int | None = None

    @contextmanager
    def enter(self, outermost: Callable[[], AbstractContextManager[None]]) -> Iterator[None]:
        """Join the open block, or run ``outermost()`` around a new one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with outermost():
            self._depth, self.owner = 1, threading.get_ident()
            try:
                yield
            finally:
                self._depth, self.owner = 0, None


class Transactional(ABC):
    """The transaction part of every store interface.

    Contract (every implementation, whatever concerns it holds):

    - Writes MUST be atomic per call, and every write inside ``with store.atomic():`` MUST
      commit together or not at all, whichever concerns they touch: an exception leaving
      the block rolls back every write made inside it. Nested ``atomic()`` blocks join the
      outermost one.
    - Reads by the thread inside an ``atomic()`` block MUST see the block's own uncommitted
      writes; reads by any other thread MUST NOT see them (they see the last committed
      state, or wait for the block to end).
    - Inside ``with store.read_view():`` every read by that thread MUST see one consistent
      committed state (inside an ``atomic()`` block it is the block's state). Writing or
      opening ``atomic()`` inside a read view is a programming error and MUST raise
      RuntimeError without changing anything.
    - After ``close()`` the store MUST NOT be used; a store MUST NOT log record contents.
    """

    @abstractmethod
    def atomic(self) -> AbstractContextManager[None]:
        """A block whose writes commit together or not at all."""

    @abstractmethod
    def read_view(self) -> AbstractContextManager[None]:
        """A block whose reads by this thread see one consistent state; no writes inside."""

    @abstractmethod
    def close(self) -> None:
        """Release resources; the store is unusable afterwards."""
