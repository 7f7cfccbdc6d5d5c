"""The consents part of the SQLCipher store: consents, the extract's read, break-glass.

``extract_source`` is one statement of point look-ups across the consent, its child, the
child's latest assessment and its placement (read with the row layouts of records.py), so
a school's extract reads one consistent state in one round trip.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

import sqlcipher3

from childreg.errors import AlreadyExists
from node.store.consents import ConsentStore
from node.store.sqlcipher.records import (
    ASSESSMENT_READ,
    CHILD_COLUMNS,
    assessment_of,
    child_of,
    prefixed,
)
from node.store.sqlcipher.transaction import SqlCipherBase
from node.store.types import ExtractSource, StoredBreakGlass, StoredConsent

_CONSENT_COLUMNS: Final = (
    "consent_id, child_id, purpose, school, valid_from, valid_until, evidence_ref, "
    "granted_at, granted_by, grant_hash, sealed_guardian, withdrawn_at"
)

# An extract's consent, its child, the child's latest assessment (by date, the lowest id
# of that date) and its placement in the year asked for: one statement of point look-ups.
_EXTRACT_SOURCE: Final = (
    f"SELECT {prefixed('k', _CONSENT_COLUMNS)}, {prefixed('c', CHILD_COLUMNS)}, "
    f"{prefixed('a', ASSESSMENT_READ)}, (SELECT p.education_form FROM placement p "
    "WHERE p.academic_year = ? AND p.child = c.id) "
    "FROM consent k LEFT JOIN child c ON c.child_id = k.child_id "
    "LEFT JOIN assessment a ON a.child = c.id AND a.assessment_id = ("
    "SELECT b.assessment_id FROM assessment b WHERE b.child = c.id "
    "ORDER BY b.assessment_date DESC, b.assessment_id LIMIT 1) "
    "WHERE k.grant_hash = ?"
)
_CONSENT_WIDTH: Final = len(_CONSENT_COLUMNS.split(","))
_CHILD_WIDTH: Final = len(CHILD_COLUMNS.split(","))


def _consent_of(r: Sequence[Any]) -> StoredConsent:
    """A consent from its row (the columns of ``_CONSENT_COLUMNS``)."""
    return StoredConsent(
        consent_id=str(r[0]),
        child_id=str(r[1]),
        purpose=str(r[2]),
        school=str(r[3]),
        valid_from=dt.date.fromisoformat(str(r[4])),
        valid_until=dt.date.fromisoformat(str(r[5])),
        evidence_ref=str(r[6]),
        granted_at=dt.datetime.fromisoformat(str(r[7])),
        granted_by=str(r[8]),
        grant_hash=bytes(r[9]),
        sealed_guardian=bytes(r[10]),
        withdrawn_at=None if r[11] is None else dt.datetime.fromisoformat(str(r[11])),
    )


class SqlCipherConsents(SqlCipherBase, ConsentStore):
    """Consents and emergency accesses, in SQL tables."""

    def insert_consent(self, consent: StoredConsent) -> None:
        """Add a consent; AlreadyExists if its id or grant hash is taken."""
        self._not_viewing()
        with self._lock:
            try:
                self._conn.execute(
                    f"INSERT INTO consent({_CONSENT_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        consent.consent_id,
                        consent.child_id,
                        consent.purpose,
                        consent.school,
                        consent.valid_from.isoformat(),
                        consent.valid_until.isoformat(),
                        consent.evidence_ref,
                        consent.granted_at.isoformat(),
                        consent.granted_by,
                        consent.grant_hash,
                        consent.sealed_guardian,
                        None if consent.withdrawn_at is None else consent.withdrawn_at.isoformat(),
                    ),
                )
            except sqlcipher3.IntegrityError:
                raise AlreadyExists("a consent with this id or grant exists") from None

    def _consents(self, where: str, params: tuple[Any, ...]) -> list[StoredConsent]:
        rows = self._query(
            f"SELECT {_CONSENT_COLUMNS} FROM consent WHERE {where} ORDER BY granted_at, consent_id",
            params,
        )
        return [_consent_of(r) for r in rows]

    def get_consent(self, consent_id: str) -> StoredConsent | None:
        """One consent by id, or None."""
        found = self._consents("consent_id = ?", (consent_id,))
        return found[0] if found else None

    def extract_source(self, grant_hash: bytes, academic_year: str) -> ExtractSource | None:
        """The consent of a grant with what its extract is made of, or None (one read)."""
        rows = self._query(_EXTRACT_SOURCE, (academic_year, grant_hash))
        if not rows:
            return None
        row = rows[0]
        consent = _consent_of(row[:_CONSENT_WIDTH])
        child_row = row[_CONSENT_WIDTH : _CONSENT_WIDTH + _CHILD_WIDTH]
        if child_row[0] is None:  # the consent's child is not held
            return ExtractSource(consent, None, None, None)
        assessment_row = row[_CONSENT_WIDTH + _CHILD_WIDTH : -1]  # the placement is last
        return ExtractSource(
            consent,
            child_of(child_row),
            None if assessment_row[0] is None else assessment_of(consent.child_id, assessment_row),
            row[-1],
        )

    def consents_of(self, child_id: str) -> list[StoredConsent]:
        """A child's consents, oldest first."""
        return self._consents("child_id = ?", (child_id,))

    def withdraw_consent(self, consent_id: str, at: dt.datetime) -> bool:
        """Mark a standing consent withdrawn; False if absent or withdrawn already."""
        self._not_viewing()
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE consent SET withdrawn_at = ? WHERE consent_id = ? AND withdrawn_at IS NULL",
                (at.isoformat(), consent_id),
            )
            return bool(cursor.rowcount)

    def add_breakglass(self, entry: StoredBreakGlass) -> None:
        """Keep an emergency access (never changed or removed)."""
        self._not_viewing()
        with self._lock:
            self._conn.execute(
                "INSERT INTO breakglass(breakglass_id, child_id, at, actor, sealed_reason)"
                " VALUES (?, ?, ?, ?, ?)",
                (entry.breakglass_id, entry.child_id, entry.at.isoformat(), entry.actor,
                 entry.sealed_reason),
            )  # fmt: skip

    def breakglass_of(self, child_id: str) -> list[StoredBreakGlass]:
        """A child's emergency accesses, oldest first."""
        rows = self._query(
            "SELECT breakglass_id, child_id, at, actor, sealed_reason FROM breakglass"
            " WHERE child_id = ? ORDER BY at, breakglass_id",
            (child_id,),
        )
        return [
            StoredBreakGlass(str(r[0]), str(r[1]), dt.datetime.fromisoformat(str(r[2])),
                             str(r[3]), bytes(r[4]))
            for r in rows
        ]  # fmt: skip
