"""The consents part of the in-memory store: consents, the extract's read, break-glass.

``extract_source`` reads the children and assessments of the same state (one lock, so one
consistent view).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from childreg.errors import AlreadyExists
from node.store.consents import ConsentStore
from node.store.memory.state import MemoryBase, copy_assessment
from node.store.types import ExtractSource, StoredBreakGlass, StoredConsent


class MemoryConsents(MemoryBase, ConsentStore):
    """Consents by id and emergency accesses in the order they happened."""

    def insert_consent(self, consent: StoredConsent) -> None:
        """Add a consent; AlreadyExists if its id or grant hash is taken."""
        with self._lock:
            state = self._writable()
            if consent.consent_id in state.consents or any(
                c.grant_hash == consent.grant_hash for c in state.consents.values()
            ):
                raise AlreadyExists("a consent with this id or grant exists")
            state.consents[consent.consent_id] = consent

    def get_consent(self, consent_id: str) -> StoredConsent | None:
        """One consent by id, or None."""
        with self._lock:
            return self._live().consents.get(consent_id)

    def extract_source(self, grant_hash: bytes, academic_year: str) -> ExtractSource | None:
        """The consent of a grant with what its extract is made of, or None."""
        with self._lock:
            state = self._live()
            consent = next((c for c in state.consents.values() if c.grant_hash == grant_hash), None)
            if consent is None:
                return None
            child = state.children.get(consent.child_id)
            if child is None:
                return ExtractSource(consent, None, None, None)
            latest = max(
                state.assessments.get(child.child_id, []),
                key=lambda a: (a.assessment_date, -a.assessment_id),
                default=None,
            )
            placement = state.placements.get(child.child_id, {}).get(academic_year)
            return ExtractSource(
                consent,
                child,
                None if latest is None else copy_assessment(latest),
                None if placement is None else placement.education_form,
            )

    def consents_of(self, child_id: str) -> list[StoredConsent]:
        """A child's consents, oldest first."""
        with self._lock:
            found = [c for c in self._live().consents.values() if c.child_id == child_id]
            return sorted(found, key=lambda c: (c.granted_at, c.consent_id))

    def withdraw_consent(self, consent_id: str, at: dt.datetime) -> bool:
        """Mark a standing consent withdrawn; False if absent or withdrawn already."""
        with self._lock:
            state = self._writable()
            held = state.consents.get(consent_id)
            if held is None or held.withdrawn_at is not None:
                return False
            state.consents[consent_id] = dataclasses.replace(held, withdrawn_at=at)
            return True

    def add_breakglass(self, entry: StoredBreakGlass) -> None:
        """Keep an emergency access (never changed or removed)."""
        with self._lock:
            self._writable().breakglass.append(entry)

    def breakglass_of(self, child_id: str) -> list[StoredBreakGlass]:
        """A child's emergency accesses, oldest first."""
        with self._lock:
            return [e for e in self._live().breakglass if e.child_id == child_id]
