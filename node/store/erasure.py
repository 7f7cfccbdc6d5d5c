"""The erasure part of a store: removing every row of a child, and the tombstones of erasures.

Why its own concern: erasure is the one write that removes what the other concerns keep
append-only (a child's history, closing, consents, emergency accesses), so it is done in
one place that knows every table a child has a row in. What stays is a tombstone naming
the child only by its audit-log pseudonym, so every read can answer "erased" and a restore
can re-apply erasures (the backup's journal calls :meth:`ErasureStore.erase_child` again:
it is idempotent). The child's data key is destroyed with its row (crypto-shredding: the
sealed fields copied anywhere before no longer open with any key the node holds).
"""

from __future__ import annotations

import datetime as dt
from abc import abstractmethod

from node.store.transactional import Transactional
from node.store.types import StoredErasure


class ErasureStore(Transactional):
    """Where a node erases children and keeps their tombstones.

    Contract (every implementation), besides :class:`~node.store.transactional.Transactional`'s:

    - ``erase_child(child_id, tombstone)`` MUST remove every row held for ``child_id``: the
      child's row (with its wrapped data key and national-id hash), placements, care
      settings, assessments, search-index tokens, history events, closing, consents and
      emergency accesses, overwriting the freed space where the store can (SQLCipher:
      ``secure_delete``). It MUST keep ``tombstone`` unless a tombstone for the same
      pseudonym is held (the first is kept unchanged). It is idempotent: called again, or
      for a child no longer (or never) held, it removes whatever rows remain and changes
      nothing else. It returns True if it recorded the tombstone now, False if one was held.
      A child id held again after an erasure (a restore) is erased again by the same call.
      An empty ``child_id`` names no child (no child id is empty): the call records the
      tombstone alone (a restore re-applying an erasure whose child it did not bring back).
    - ``erased_children`` returns every tombstone, ordered by (erased_at, pseudonym);
      ``erasure_of`` the tombstone of one pseudonym, or None. Tombstones are never changed
      or removed.
    - ``closed_on_or_before(day)`` gives the ids of children whose record closed on or
      before ``day``, with the closing date; ``born_on_or_before(day)`` the ids of children
      born on or before ``day`` (both sorted by child id; the retention rules' candidates).
    """

    @abstractmethod
    def erase_child(self, child_id: str, tombstone: StoredErasure) -> bool:
        """Remove every row of the child and keep its tombstone; True if the tombstone is new."""

    @abstractmethod
    def erased_children(self) -> list[StoredErasure]:
        """Every tombstone, by (erased_at, pseudonym)."""

    @abstractmethod
    def erasure_of(self, pseudonym: bytes) -> StoredErasure | None:
        """The tombstone of this pseudonym, or None."""

    @abstractmethod
    def closed_on_or_before(self, day: dt.date) -> list[tuple[str, dt.date]]:
        """(child id, closed on) of each child whose record closed on or before ``day``."""

    @abstractmethod
    def born_on_or_before(self, day: dt.date) -> list[str]:
        """The ids of the children born on or before ``day``."""
