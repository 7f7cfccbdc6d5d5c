"""The records part of the SQLCipher store: children, placements, care settings, assessments.

Children are keyed by a surrogate integer ``id`` (child_id is a unique column), so
placements, care settings and assessments refer to a small key; the bulk path of an import
assigns those ids itself under the write lock, one ``executemany`` per table. Count tables
run the SQL of :mod:`node.store.sqlcipher.counts`. The row layouts of a child and an
assessment are shared with the extract's read (consents.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

import sqlcipher3

from childreg import codes
from childreg.errors import AlreadyExists, NotFound
from node.store.records import RecordsStore
from node.store.sqlcipher.counts import count_sql
from node.store.sqlcipher.transaction import SqlCipherBase
from node.store.types import (
    NewChild,
    StoredAssessment,
    StoredCareSetting,
    StoredChild,
    StoredPlacement,
    assessment_columns,
    child_columns,
    date_or_none,
    unpack_sealed,
)

_PAGE: Final = 1000  # child ids fetched per round trip by child_ids()
_IN_CHUNK: Final = 500  # values per IN (...) list in existing_* look-ups

CHILD_COLUMNS: Final = (
    "child_id, key_version, wrapped_key, national_id_hash, date_of_birth, sex, district, "
    "sealed_identity"
)
_INSERT_CHILD: Final = f"INSERT INTO child({CHILD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_UPDATE_CHILD: Final = (
    "UPDATE child SET key_version = ?, wrapped_key = ?, national_id_hash = ?, "
    "date_of_birth = ?, sex = ?, district = ?, sealed_identity = ? WHERE child_id = ?"
)
_UPSERT_PLACEMENT: Final = (
    "INSERT INTO placement(child, academic_year, education_form, institution) "
    "SELECT id, ?, ?, ? FROM child WHERE child_id = ? "
    "ON CONFLICT(academic_year, child) DO UPDATE SET "
    "education_form = excluded.education_form, institution = excluded.institution"
)
_PUT_CARE: Final = (
    "INSERT INTO care_setting(child, since, care_setting) "
    "SELECT id, ?, ? FROM child WHERE child_id = ? "
    "ON CONFLICT(child, since) DO UPDATE SET care_setting = excluded.care_setting"
)
_ASSESSMENT_COLUMNS: Final = (
    "child, assessment_id, assessment_date, commission, impairment_band, recommended_form, "
    "next_review, sealed_fields"
)
_ADD_ASSESSMENT: Final = (
    f"INSERT INTO assessment({_ASSESSMENT_COLUMNS}) "
    "SELECT c.id, COALESCE((SELECT max(a.assessment_id) FROM assessment a "
    "WHERE a.child = c.id), 0) + 1, ?, ?, ?, ?, ?, ? FROM child c WHERE c.child_id = ? "
    "RETURNING assessment_id"
)
# The bulk path of insert_new_children: surrogate ids are assigned here, under the lock.
_NEW_CHILD: Final = f"INSERT INTO child(id, {CHILD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_NEW_PLACEMENT: Final = (
    "INSERT INTO placement(child, academic_year, education_form, institution) VALUES (?, ?, ?, ?)"
)
_NEW_CARE: Final = "INSERT INTO care_setting(child, since, care_setting) VALUES (?, ?, ?)"
_NEW_ASSESSMENT: Final = (
    f"INSERT INTO assessment({_ASSESSMENT_COLUMNS}) VALUES (?, 1, ?, ?, ?, ?, ?, ?)"
)
#: What a stored assessment is read from (after the child it belongs to).
ASSESSMENT_READ: Final = (
    "assessment_id, assessment_date, commission, impairment_band, recommended_form, "
    "next_review, sealed_fields"
)


def prefixed(alias: str, columns: str) -> str:
    """Each of the comma-separated ``columns`` qualified with ``alias``."""
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


def child_of(row: Sequence[Any]) -> StoredChild:
    """A child from its row (the columns of ``CHILD_COLUMNS``)."""
    return StoredChild(
        child_id=row[0],
        key_version=row[1],
        wrapped_key=row[2],
        national_id_hash=row[3],
        date_of_birth=dt.date.fromisoformat(row[4]),
        sex=row[5],
        district=row[6],
        sealed_identity=row[7],
    )


def assessment_of(child_id: str, row: Sequence[Any]) -> StoredAssessment:
    """An assessment of ``child_id`` from its row (the columns of ``ASSESSMENT_READ``)."""
    aid, date, commission, band, form, review, sealed = row
    return StoredAssessment(
        child_id=child_id,
        assessment_id=int(aid),
        assessment_date=dt.date.fromisoformat(date),
        commission=commission,
        impairment_band=band,
        recommended_form=form,
        next_review=date_or_none(review),
        sealed_fields=unpack_sealed(sealed),
    )


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


def _already_exists(exc: Exception) -> AlreadyExists:
    if "national_id_hash" in str(exc):
        return AlreadyExists("a child with this national id already exists")
    return AlreadyExists("a child with this child_id already exists")


class SqlCipherRecords(SqlCipherBase, RecordsStore):
    """Children and their placements, care settings and assessments, in SQL tables."""

    def insert_child(self, child: StoredChild) -> None:
        """Add a new child; AlreadyExists if the id or national-id hash is taken."""
        self._not_viewing()
        with self._lock:  # one statement: atomic by itself
            try:
                self._conn.execute(_INSERT_CHILD, child_columns(child))
            except sqlcipher3.IntegrityError as exc:
                raise _already_exists(exc) from None

    def insert_new_children(self, rows: Sequence[NewChild]) -> None:
        """Add new children with their first records, all or none; AlreadyExists if any is held.

        One ``executemany`` per table inside a savepoint, so a refusal undoes only this
        call; surrogate ids follow the largest one held (the write lock is held throughout).
        """
        self._not_viewing()
        if not rows:
            return
        with self._lock, self._nesting.enter(self._transaction):
            conn = self._conn
            (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM child").fetchone()
            children: list[tuple[Any, ...]] = []
            placements: list[tuple[Any, ...]] = []
            cares: list[tuple[Any, ...]] = []
            assessments: list[tuple[Any, ...]] = []
            for surrogate, (c, p, care, a) in enumerate(rows, start=last + 1):
                key = (surrogate,)
                children.append(key + c)
                placements.append(key + p)
                if care is not None:
                    cares.append(key + care)
                if a is not None:
                    assessments.append(key + a)
            conn.execute("SAVEPOINT new_children")
            try:
                conn.executemany(_NEW_CHILD, children)
                conn.executemany(_NEW_PLACEMENT, placements)
                conn.executemany(_NEW_CARE, cares)
                conn.executemany(_NEW_ASSESSMENT, assessments)
            except BaseException as exc:
                conn.execute("ROLLBACK TO new_children")
                conn.execute("RELEASE new_children")
                if isinstance(exc, sqlcipher3.IntegrityError):
                    raise _already_exists(exc) from None
                raise
            conn.execute("RELEASE new_children")

    def replace_child(self, child: StoredChild) -> None:
        """Replace an existing child's row; NotFound if absent; AlreadyExists on a hash clash."""
        self._not_viewing()
        with self._lock:  # one statement: atomic by itself
            try:
                cursor = self._conn.execute(
                    _UPDATE_CHILD, (*child_columns(child)[1:], child.child_id)
                )
            except sqlcipher3.IntegrityError as exc:
                raise _already_exists(exc) from None
            if cursor.rowcount == 0:
                raise NotFound("no child with that child_id")

    def upsert_placement(self, placement: StoredPlacement) -> None:
        """Set the child's placement for that academic year."""
        self._not_viewing()
        with self._lock:  # one statement: atomic by itself
            cursor = self._conn.execute(
                _UPSERT_PLACEMENT,
                (
                    placement.academic_year,
                    placement.education_form,
                    placement.institution,
                    placement.child_id,
                ),
            )
            if cursor.rowcount == 0:
                raise NotFound("no child with that child_id")

    def put_care_setting(self, care: StoredCareSetting) -> None:
        """Record the child's care setting from a date on."""
        self._not_viewing()
        with self._lock:  # one statement: atomic by itself
            cursor = self._conn.execute(
                _PUT_CARE, (care.since.isoformat(), care.care_setting, care.child_id)
            )
            if cursor.rowcount == 0:
                raise NotFound("no child with that child_id")

    def add_assessment(self, assessment: StoredAssessment) -> int:
        """Add an assessment and return its new id (1, 2, … per child)."""
        self._not_viewing()
        a = assessment
        with self._lock:  # one statement: atomic by itself
            row = self._conn.execute(
                _ADD_ASSESSMENT, (*assessment_columns(a), a.child_id)
            ).fetchall()
            if not row:
                raise NotFound("no child with that child_id")
            return int(row[0][0])

    def get_child(self, child_id: str) -> StoredChild | None:
        """The child's row, or None."""
        rows = self._query(f"SELECT {CHILD_COLUMNS} FROM child WHERE child_id = ?", (child_id,))
        return child_of(rows[0]) if rows else None

    def find_by_national_id_hash(self, digest: bytes) -> str | None:
        """The child id holding this national-id hash, or None."""
        rows = self._query("SELECT child_id FROM child WHERE national_id_hash = ?", (digest,))
        return str(rows[0][0]) if rows else None

    def existing_child_ids(self, child_ids: Iterable[str]) -> set[str]:
        """Those of ``child_ids`` that are held (looked up by the unique index, in chunks)."""
        return {str(v) for v in self._existing("child_id", list(dict.fromkeys(child_ids)))}

    def existing_national_id_hashes(self, digests: Iterable[bytes]) -> set[bytes]:
        """Those of ``digests`` that some held child has as its national-id hash."""
        return {bytes(v) for v in self._existing("national_id_hash", list(dict.fromkeys(digests)))}

    def _existing(self, column: str, values: list[Any]) -> list[Any]:
        found: list[Any] = []
        for at in range(0, len(values), _IN_CHUNK):
            chunk = values[at : at + _IN_CHUNK]
            sql = f"SELECT {column} FROM child WHERE {column} IN ({_placeholders(len(chunk))})"
            found += (v for (v,) in self._query(sql, chunk))
        return found

    def placements(self, child_id: str) -> list[StoredPlacement]:
        """The child's placements, by academic year."""
        rows = self._query(
            "SELECT p.academic_year, p.education_form, p.institution FROM placement p "
            "JOIN child c ON c.id = p.child WHERE c.child_id = ? ORDER BY p.academic_year",
            (child_id,),
        )
        return [StoredPlacement(child_id, year, form, inst) for year, form, inst in rows]

    def care_settings(self, child_id: str) -> list[StoredCareSetting]:
        """The child's care settings, by date."""
        rows = self._query(
            "SELECT s.care_setting, s.since FROM care_setting s "
            "JOIN child c ON c.id = s.child WHERE c.child_id = ? ORDER BY s.since",
            (child_id,),
        )
        return [
            StoredCareSetting(child_id, setting, dt.date.fromisoformat(since))
            for setting, since in rows
        ]

    def assessments(self, child_id: str) -> list[StoredAssessment]:
        """The child's assessments, by id."""
        rows = self._query(
            f"SELECT {prefixed('a', ASSESSMENT_READ)} FROM assessment a "
            "JOIN child c ON c.id = a.child WHERE c.child_id = ? ORDER BY a.assessment_id",
            (child_id,),
        )
        return [assessment_of(child_id, row) for row in rows]

    def child_ids(self) -> Iterator[str]:
        """Every child id, sorted (fetched a page at a time)."""
        after = ""
        while True:
            page = self._query(
                "SELECT child_id FROM child WHERE child_id > ? ORDER BY child_id LIMIT ?",
                (after, _PAGE),
            )
            for (child_id,) in page:
                yield str(child_id)
            if len(page) < _PAGE:
                return
            after = page[-1][0]

    def child_count(self) -> int:
        """How many children are stored."""
        return int(self._query("SELECT count(*) FROM child")[0][0])

    def count_table(
        self, academic_year: str, reference_date: dt.date, dimensions: Sequence[str]
    ) -> dict[tuple[str, ...], int]:
        """Sparse counts of children placed in ``academic_year``, by ``dimensions``.

        Regions are folded from districts after grouping (a handful of cells), so the
        per-child work in SQL is the placement scan, one covering-index lookup per child
        and, when asked for, one index seek each for care setting and impairment band.
        """
        sql, params = count_sql(academic_year, reference_date, dimensions)
        rows = self._query(sql, params)
        counts: dict[tuple[str, ...], int] = {}
        fold = [d == "region" for d in dimensions]
        for row in rows:
            cell = tuple(
                (codes.region_of(v) if codes.is_district(v) else v) if region else v
                for v, region in zip(row[:-1], fold, strict=True)
            )
            counts[cell] = counts.get(cell, 0) + int(row[-1])
        return counts
