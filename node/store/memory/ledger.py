"""The ledger part of the in-memory store: privacy ledger, participation, catalogue versions."""

from __future__ import annotations

from childreg.errors import AlreadyExists
from childreg.secagg.roster import Participation
from node.store.ledger import LedgerStore
from node.store.memory.state import MemoryBase
from node.store.types import LedgerEntry


class MemoryLedger(MemoryBase, LedgerStore):
    """The privacy ledger as a list in append order; participation by snapshot."""

    def ledger(self, snapshot: str) -> list[LedgerEntry]:
        """Every privacy-ledger entry of ``snapshot``, in the order they were appended."""
        with self._lock:
            return [e for e in self._live().ledger if e.snapshot == snapshot]

    def append_ledger(self, entry: LedgerEntry) -> None:
        """Append an entry; AlreadyExists if its (snapshot, version, table) is there already."""
        with self._lock, self.atomic():
            state = self._writable()
            key = (entry.snapshot, entry.catalogue_version, entry.table_id)
            if any((e.snapshot, e.catalogue_version, e.table_id) == key for e in state.ledger):
                raise AlreadyExists("this table is already in the privacy ledger")
            state.ledger.append(entry)
            if self._journal is not None:
                self._journal.ledger(entry)

    def ledger_entries(self) -> list[LedgerEntry]:
        """Every privacy-ledger entry of every snapshot, in the order they were appended."""
        with self._lock:
            return list(self._live().ledger)

    def participations(self) -> list[tuple[str, Participation]]:
        """Every participant set recorded, with its snapshot."""
        with self._lock:
            return sorted(self._live().participation.items())

    def participation(self, snapshot: str) -> Participation | None:
        """The participation recorded for ``snapshot``, or None."""
        with self._lock:
            return self._live().participation.get(snapshot)

    def record_participation(self, snapshot: str, participation: Participation) -> None:
        """Record ``participation`` unless one is recorded already (never overwrites)."""
        with self._lock, self.atomic():
            self._writable().participation.setdefault(snapshot, participation)
            if self._journal is not None:
                self._journal.participation(snapshot, participation)

    def catalogue_versions(self) -> dict[int, str]:
        """Every catalogue version the ledger holds (any snapshot), with its digest."""
        with self._lock:
            return {e.catalogue_version: e.catalogue_digest for e in self._live().ledger}
