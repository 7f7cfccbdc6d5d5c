"""The consents part of a store: guardians' consents, the extract's one read, break-glass.

What :mod:`node.consent` keeps: consents to share one purpose's fields with one school
(the grant itself is never stored, only a keyed hash of it) and emergency accesses.
``extract_source`` also reads the child's records: it belongs here because it is looked up
by a grant, and it is implemented by a store that holds the records too (one state).
"""

from __future__ import annotations

import datetime as dt
from abc import abstractmethod

from node.store.transactional import Transactional
from node.store.types import ExtractSource, StoredBreakGlass, StoredConsent


class ConsentStore(Transactional):
    """Where a node keeps consents and emergency accesses.

    Contract (every implementation), besides :class:`~node.store.transactional.Transactional`'s:

    - ``insert_consent`` MUST raise :class:`childreg.errors.AlreadyExists` when the consent
      id or the grant hash is taken, and MUST NOT change anything.
    - ``withdraw_consent`` changes only a standing consent; consents are never removed.
    - ``extract_source`` returns the consent of the grant (None if there is none), the
      consent's child, its latest assessment (by date; the lowest id among several of that
      date) and the form of education of its placement in the given academic year, all
      as one consistent state.
    - Emergency accesses are never changed or removed.
    """

    @abstractmethod
    def insert_consent(self, consent: StoredConsent) -> None:
        """Add a consent; AlreadyExists if its id or grant hash is taken."""

    @abstractmethod
    def get_consent(self, consent_id: str) -> StoredConsent | None:
        """One consent by id, or None."""

    @abstractmethod
    def extract_source(self, grant_hash: bytes, academic_year: str) -> ExtractSource | None:
        """The consent of a grant with what its extract is made of, or None (no such grant).

        One consistent state (inside ``atomic()``, the block's own); point look-ups only.
        """

    @abstractmethod
    def consents_of(self, child_id: str) -> list[StoredConsent]:
        """A child's consents, oldest first."""

    @abstractmethod
    def withdraw_consent(self, consent_id: str, at: dt.datetime) -> bool:
        """Mark a standing consent withdrawn; False if absent or withdrawn already."""

    @abstractmethod
    def add_breakglass(self, entry: StoredBreakGlass) -> None:
        """Keep an emergency access (never changed or removed)."""

    @abstractmethod
    def breakglass_of(self, child_id: str) -> list[StoredBreakGlass]:
        """A child's emergency accesses, oldest first."""
