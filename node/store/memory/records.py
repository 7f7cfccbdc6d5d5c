"""The records part of the in-memory store, and its count tables in plain Python.

Count tables are computed here with :mod:`childreg.codes` one child at a time, the
obvious way, so the contract tests can hold the SQLCipher store's SQL to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence

from childreg import codes
from childreg.errors import AlreadyExists, NotFound
from node.store.memory.state import MemoryBase, copy_assessment
from node.store.records import RecordsStore
from node.store.types import (
    NewChild,
    StoredAssessment,
    StoredCareSetting,
    StoredChild,
    StoredPlacement,
    records_of,
)


class MemoryRecords(MemoryBase, RecordsStore):
    """Children and their placements, care settings and assessments, in dictionaries."""

    def insert_child(self, child: StoredChild) -> None:
        """Add a new child; AlreadyExists if the id or national-id hash is taken."""
        with self._lock:
            s = self._writable()
            if child.child_id in s.children:
                raise AlreadyExists("a child with this child_id already exists")
            if child.national_id_hash is not None and child.national_id_hash in s.by_hash:
                raise AlreadyExists("a child with this national id already exists")
            s.children[child.child_id] = child
            if child.national_id_hash is not None:
                s.by_hash[child.national_id_hash] = child.child_id

    def insert_new_children(self, rows: Sequence[NewChild]) -> None:
        """Add new children with their first records, all or none; AlreadyExists if any is held."""
        with self._lock:
            s = self._writable()
            ids: set[str] = set()
            digests: set[bytes] = set()
            for (child_id, _, _, digest, *_), *_ in rows:  # check everything before changing
                if child_id in s.children or child_id in ids:
                    raise AlreadyExists("a child with this child_id already exists")
                if digest is not None and (digest in s.by_hash or digest in digests):
                    raise AlreadyExists("a child with this national id already exists")
                ids.add(child_id)
                if digest is not None:
                    digests.add(digest)
            records = [records_of(row) for row in rows]  # a malformed row changes nothing
            for child, placement, care, assessment in records:
                child_id = child.child_id
                s.children[child_id] = child
                if child.national_id_hash is not None:
                    s.by_hash[child.national_id_hash] = child_id
                s.placements[child_id] = {placement.academic_year: placement}
                if care is not None:
                    s.care[child_id] = {care.since: care}
                if assessment is not None:
                    s.assessments[child_id] = [assessment]

    def existing_child_ids(self, child_ids: Iterable[str]) -> set[str]:
        """Those of ``child_ids`` that are held."""
        with self._lock:
            held = self._live().children
            return {child_id for child_id in child_ids if child_id in held}

    def existing_national_id_hashes(self, digests: Iterable[bytes]) -> set[bytes]:
        """Those of ``digests`` that some held child has as its national-id hash."""
        with self._lock:
            held = self._live().by_hash
            return {digest for digest in digests if digest in held}

    def replace_child(self, child: StoredChild) -> None:
        """Replace an existing child's row; NotFound if absent; AlreadyExists on a hash clash."""
        with self._lock:
            s = self._writable()
            old = self._require(child.child_id)
            digest = child.national_id_hash
            if digest is not None and s.by_hash.get(digest, child.child_id) != child.child_id:
                raise AlreadyExists("a child with this national id already exists")
            if old.national_id_hash is not None:
                del s.by_hash[old.national_id_hash]
            if digest is not None:
                s.by_hash[digest] = child.child_id
            s.children[child.child_id] = child

    def get_child(self, child_id: str) -> StoredChild | None:
        """The child's row, or None."""
        with self._lock:
            return self._live().children.get(child_id)

    def find_by_national_id_hash(self, digest: bytes) -> str | None:
        """The child id holding this national-id hash, or None."""
        with self._lock:
            return self._live().by_hash.get(digest)

    def upsert_placement(self, placement: StoredPlacement) -> None:
        """Set the child's placement for that academic year."""
        with self._lock:
            s = self._writable()
            self._require(placement.child_id)
            per_year = s.placements.setdefault(placement.child_id, {})
            per_year[placement.academic_year] = placement

    def put_care_setting(self, care: StoredCareSetting) -> None:
        """Record the child's care setting from a date on."""
        with self._lock:
            s = self._writable()
            self._require(care.child_id)
            s.care.setdefault(care.child_id, {})[care.since] = care

    def add_assessment(self, assessment: StoredAssessment) -> int:
        """Add an assessment and return its new id (1, 2, … per child)."""
        with self._lock:
            s = self._writable()
            self._require(assessment.child_id)
            existing = s.assessments.setdefault(assessment.child_id, [])
            new_id = existing[-1].assessment_id + 1 if existing else 1
            existing.append(copy_assessment(assessment, assessment_id=new_id))
            return new_id

    def placements(self, child_id: str) -> list[StoredPlacement]:
        """The child's placements, by academic year."""
        with self._lock:
            per_year = self._live().placements.get(child_id, {})
            return [per_year[year] for year in sorted(per_year)]

    def care_settings(self, child_id: str) -> list[StoredCareSetting]:
        """The child's care settings, by date."""
        with self._lock:
            per_date = self._live().care.get(child_id, {})
            return [per_date[since] for since in sorted(per_date)]

    def assessments(self, child_id: str) -> list[StoredAssessment]:
        """The child's assessments, by id."""
        with self._lock:
            return [copy_assessment(a) for a in self._live().assessments.get(child_id, [])]

    def child_ids(self) -> Iterator[str]:
        """Every child id, sorted."""
        with self._lock:
            ids = sorted(self._live().children)
        return iter(ids)

    def child_count(self) -> int:
        """How many children are stored."""
        with self._lock:
            return len(self._live().children)

    def count_table(
        self, academic_year: str, reference_date: dt.date, dimensions: Sequence[str]
    ) -> dict[tuple[str, ...], int]:
        """Sparse counts of children placed in ``academic_year``, by ``dimensions``."""
        for d in dimensions:
            codes.codes(d)  # KeyError for an unknown dimension, as in the SQL store
        counts: dict[tuple[str, ...], int] = {}
        with self._lock:
            s = self._live()
            for child_id, per_year in s.placements.items():
                placement = per_year.get(academic_year)
                if placement is None:
                    continue
                closure = s.closures.get(child_id)
                if closure is not None and closure.closed_on <= reference_date:
                    continue  # closed as of the reference date
                categories = self._categories(child_id, placement, reference_date)
                cell = tuple(categories[d] for d in dimensions)
                counts[cell] = counts.get(cell, 0) + 1
        return counts

    def _categories(self, child_id: str, placement: StoredPlacement, on: dt.date) -> dict[str, str]:
        s = self._state
        child = s.children[child_id]
        cares = [c for c in s.care.get(child_id, {}).values() if c.since <= on]
        banded = [
            a
            for a in s.assessments.get(child_id, [])
            if a.assessment_date <= on and a.impairment_band is not None
        ]
        care = max(cares, key=lambda c: c.since).care_setting if cares else None
        latest = max(banded, key=lambda a: (a.assessment_date, a.assessment_id), default=None)
        return {
            "education_form": placement.education_form,
            "sex": child.sex,
            "age_band": codes.age_band(child.date_of_birth, on),
            "care_setting": care or codes.CARE_NOT_RECORDED,
            "impairment_band": (
                latest.impairment_band
                if latest and latest.impairment_band
                else codes.IMPAIRMENT_NOT_ASSESSED
            ),
            "district": child.district,
            "region": codes.region_of(child.district),
        }

    def _require(self, child_id: str) -> StoredChild:
        child = self._live().children.get(child_id)
        if child is None:
            raise NotFound("no child with that child_id")
        return child
