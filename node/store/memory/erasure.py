"""The erasure part of the in-memory store: dropping a child from every dictionary."""

from __future__ import annotations

import datetime as dt

from node.store.erasure import ErasureStore
from node.store.memory.state import MemoryBase
from node.store.types import StoredErasure


class MemoryErasure(MemoryBase, ErasureStore):
    """Tombstones by pseudonym; erasing removes the child's entries everywhere."""

    def erase_child(self, child_id: str, tombstone: StoredErasure) -> bool:
        """Remove every row of the child and keep its tombstone; True if the tombstone is new."""
        with self._lock:
            s = self._writable()
            held = s.children.pop(child_id, None)
            if held is not None and held.national_id_hash is not None:
                s.by_hash.pop(held.national_id_hash, None)
            s.placements.pop(child_id, None)
            s.care.pop(child_id, None)
            s.assessments.pop(child_id, None)
            for token in s.tokens_of.pop(child_id, set()):
                holders = s.by_token.get(token, set())
                holders.discard(child_id)
                if not holders:
                    s.by_token.pop(token, None)
            s.events.pop(child_id, None)
            s.closures.pop(child_id, None)
            for consent_id in [k for k, c in s.consents.items() if c.child_id == child_id]:
                del s.consents[consent_id]
            s.breakglass = [e for e in s.breakglass if e.child_id != child_id]
            if tombstone.pseudonym in s.erasures:
                return False
            s.erasures[tombstone.pseudonym] = tombstone
            return True

    def erased_children(self) -> list[StoredErasure]:
        """Every tombstone, by (erased_at, pseudonym)."""
        with self._lock:
            found = self._live().erasures.values()
            return sorted(found, key=lambda e: (e.erased_at, e.pseudonym))

    def erasure_of(self, pseudonym: bytes) -> StoredErasure | None:
        """The tombstone of this pseudonym, or None."""
        with self._lock:
            return self._live().erasures.get(pseudonym)

    def closed_on_or_before(self, day: dt.date) -> list[tuple[str, dt.date]]:
        """(child id, closed on) of each child whose record closed on or before ``day``."""
        with self._lock:
            closures = self._live().closures.values()
            return sorted((c.child_id, c.closed_on) for c in closures if c.closed_on <= day)

    def born_on_or_before(self, day: dt.date) -> list[str]:
        """The ids of the children born on or before ``day``."""
        with self._lock:
            children = self._live().children.values()
            return sorted(c.child_id for c in children if c.date_of_birth <= day)
