"""The ledger part of a store: the privacy ledger, secure-aggregation participation, catalogues.

What the statistics desk (:mod:`node.statistics.desk`) keeps so that a node never spends
more privacy budget on a snapshot than it may and never answers one question twice with
different noise: every release as released, the participant set of each secure round,
and which catalogue versions have been used.
"""

from __future__ import annotations

from abc import abstractmethod

from childreg.secagg.roster import Participation
from node.store.journaling import Journaled
from node.store.transactional import Transactional
from node.store.types import LedgerEntry


class LedgerStore(Journaled, Transactional):
    """Where a node keeps its privacy ledger and secure-aggregation participation.

    Contract (every implementation), besides :class:`~node.store.transactional.Transactional`'s:

    - ``append_ledger`` keeps every field of the entry, ``mechanism`` included; the ledger
      is append-only. (snapshot, catalogue_version, table_id) is unique: a second append
      MUST raise :class:`childreg.errors.AlreadyExists` and change nothing.
    - ``record_participation`` stores a participant set (with its number of colluders)
      only if none is recorded for its snapshot, never replacing one, and it is never
      changed or removed.
    - Both writes roll back with an enclosing ``atomic()`` block.
    """

    @abstractmethod
    def ledger(self, snapshot: str) -> list[LedgerEntry]:
        """Every privacy-ledger entry of ``snapshot``, in the order they were appended."""

    @abstractmethod
    def append_ledger(self, entry: LedgerEntry) -> None:
        """Append an entry; AlreadyExists if its (snapshot, version, table) is there already."""

    @abstractmethod
    def ledger_entries(self) -> list[LedgerEntry]:
        """Every privacy-ledger entry of every snapshot, in the order they were appended."""

    @abstractmethod
    def participations(self) -> list[tuple[str, Participation]]:
        """Every participant set recorded, with its snapshot, ordered by snapshot."""

    @abstractmethod
    def participation(self, snapshot: str) -> Participation | None:
        """The secure-aggregation participation recorded for ``snapshot``, or None."""

    @abstractmethod
    def record_participation(self, snapshot: str, participation: Participation) -> None:
        """Record ``participation`` for ``snapshot`` unless one is there.

        Never overwrites: a second call for the same key changes nothing (the caller reads
        back to see which set holds).
        """

    @abstractmethod
    def catalogue_versions(self) -> dict[int, str]:
        """Every catalogue version the ledger holds (any snapshot), with its digest."""
