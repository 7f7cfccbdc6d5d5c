"""The ledger part of the SQLCipher store: privacy ledger, participation, catalogue versions.

Released vectors and participant sets are kept as compact JSON, ρ as an exact fraction
(numerator and denominator); the schema's triggers (:mod:`node.store.migrations`) refuse
any change or removal of a ledger entry or a participant set, even by raw SQL.
"""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction

import sqlcipher3

from childreg.errors import AlreadyExists, FailedPrecondition
from childreg.secagg.roster import Participation
from node.store.ledger import LedgerStore
from node.store.sqlcipher.transaction import SqlCipherBase
from node.store.types import MECHANISMS, LedgerEntry, Mechanism


class SqlCipherLedger(SqlCipherBase, LedgerStore):
    """The privacy ledger and secure-aggregation participation, in SQL tables."""

    def ledger(self, snapshot: str) -> list[LedgerEntry]:
        """Every privacy-ledger entry of ``snapshot``, in the order they were appended."""
        return self._entries(" WHERE snapshot = ?", (snapshot,))

    def ledger_entries(self) -> list[LedgerEntry]:
        """Every privacy-ledger entry of every snapshot, in the order they were appended."""
        return self._entries("", ())

    def participations(self) -> list[tuple[str, Participation]]:
        """Every participant set recorded, with its snapshot."""
        rows = self._query("SELECT snapshot FROM secagg_participation ORDER BY snapshot")
        found = [(str(r[0]), self.participation(str(r[0]))) for r in rows]
        return [(s, p) for s, p in found if p is not None]

    def _entries(self, where: str, params: tuple[str, ...]) -> list[LedgerEntry]:
        rows = self._query(
            "SELECT snapshot, catalogue_version, catalogue_digest, table_id, rho_numerator,"
            " rho_denominator, released, released_at, requested_by, mechanism"
            " FROM privacy_ledger" + where + " ORDER BY seq",
            params,
        )
        return [
            LedgerEntry(
                snapshot=str(r[0]),
                catalogue_version=int(r[1]),
                catalogue_digest=str(r[2]),
                table_id=str(r[3]),
                rho=Fraction(int(r[4]), int(r[5])),
                released=tuple(int(v) for v in json.loads(r[6])),
                released_at=dt.datetime.fromisoformat(str(r[7])),
                requested_by=str(r[8]),
                mechanism=_mechanism(r[9]),
            )
            for r in rows
        ]

    def append_ledger(self, entry: LedgerEntry) -> None:
        """Append an entry; AlreadyExists if its (snapshot, version, table) is there already."""
        with self.atomic():
            try:
                self._conn.execute(
                    "INSERT INTO privacy_ledger(snapshot, catalogue_version, catalogue_digest,"
                    " table_id, rho_numerator, rho_denominator, released, released_at,"
                    " requested_by, mechanism) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        entry.snapshot,
                        entry.catalogue_version,
                        entry.catalogue_digest,
                        entry.table_id,
                        entry.rho.numerator,
                        entry.rho.denominator,
                        json.dumps(list(entry.released), separators=(",", ":")),
                        entry.released_at.isoformat(),
                        entry.requested_by,
                        entry.mechanism,
                    ),
                )
            except sqlcipher3.IntegrityError:
                raise AlreadyExists("this table is already in the privacy ledger") from None
            if self._journal is not None:
                self._journal.ledger(entry)

    def participation(self, snapshot: str) -> Participation | None:
        """The participation recorded for ``snapshot``, or None."""
        rows = self._query(
            "SELECT participants, colluders FROM secagg_participation WHERE snapshot = ?",
            (snapshot,),
        )
        if not rows:
            return None
        participants, colluders = rows[0]
        return Participation(frozenset(str(p) for p in json.loads(participants)), int(colluders))

    def record_participation(self, snapshot: str, participation: Participation) -> None:
        """Record ``participation`` unless one is recorded already (never overwrites)."""
        with self.atomic():
            self._conn.execute(
                "INSERT INTO secagg_participation(snapshot, participants, colluders,"
                " recorded_at) VALUES (?, ?, ?, ?) ON CONFLICT (snapshot) DO NOTHING",
                (
                    snapshot,
                    json.dumps(sorted(participation.participants), separators=(",", ":")),
                    participation.colluders,
                    dt.datetime.now(dt.UTC).isoformat(),
                ),
            )
            if self._journal is not None:
                self._journal.participation(snapshot, participation)

    def catalogue_versions(self) -> dict[int, str]:
        """Every catalogue version the ledger holds (any snapshot), with its digest."""
        rows = self._query(
            "SELECT DISTINCT catalogue_version, catalogue_digest FROM privacy_ledger"
        )
        return {int(r[0]): str(r[1]) for r in rows}


def _mechanism(value: object) -> Mechanism:
    """A stored mechanism, checked (the schema's CHECK allows only these)."""
    for mechanism in MECHANISMS:
        if value == mechanism:
            return mechanism
    raise FailedPrecondition("the privacy ledger holds an unknown mechanism")
