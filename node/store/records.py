"""The records part of a store: children, placements, care settings, assessments, counts.

What the registry (:mod:`node.records.registry`) and the count tables of
:mod:`node.statistics` need from storage, and nothing else. Records arrive in their stored
form (:mod:`node.store.types`): identity and sensitive fields already sealed.
"""

from __future__ import annotations

import datetime as dt
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence

from node.store.transactional import Transactional
from node.store.types import (
    NewChild,
    StoredAssessment,
    StoredCareSetting,
    StoredChild,
    StoredPlacement,
)


class RecordsStore(Transactional):
    """Where a node keeps its children and their placements, care settings and assessments.

    Contract (every implementation), besides :class:`~node.store.transactional.Transactional`'s:

    - ``insert_child`` MUST raise :class:`childreg.errors.AlreadyExists` when the child id,
      or a non-null ``national_id_hash``, is already present, and MUST NOT change anything.
    - ``insert_new_children`` MUST store every row (child, placement, care setting and
      assessment numbered 1) or none: on AlreadyExists (an id or non-null hash already
      present, or repeated within the rows) it MUST NOT change anything, and an enclosing
      ``atomic()`` block stays usable. Stored rows read back exactly as the single-row
      writes of their :func:`~node.store.types.records_of` would have stored them.
    - ``existing_child_ids`` / ``existing_national_id_hashes`` MUST return exactly those of
      the given values that are present, and nothing else.
    - Writes naming a child that does not exist MUST raise :class:`childreg.errors.NotFound`.
    - ``upsert_placement`` keeps one placement per (child, academic year), replacing it;
      ``put_care_setting`` keeps one per (child, since), replacing it.
    - ``add_assessment`` ignores the given ``assessment_id`` and returns a new one, unique
      and increasing per child starting at 1.
    - Reads return records ordered: placements by academic year, care settings by date,
      assessments by id.
    - ``count_table`` counts each child that has a placement for ``academic_year`` exactly
      once, in the cell of its categories (see ``count_table``); it returns only non-zero
      cells. It MUST NOT return anything about a child without such a placement.
    """

    @abstractmethod
    def insert_child(self, child: StoredChild) -> None:
        """Add a new child; AlreadyExists if the id or national-id hash is taken."""

    @abstractmethod
    def insert_new_children(self, rows: Sequence[NewChild]) -> None:
        """Add new children with their first records, all or none; AlreadyExists if any is held.

        The bulk path of an import: the caller checks first (``existing_child_ids``,
        ``existing_national_id_hashes``) so the refusal is a safety net, not the way to find
        duplicates. Inside the caller's ``atomic()`` block, or atomic by itself without one.
        """

    @abstractmethod
    def existing_child_ids(self, child_ids: Iterable[str]) -> set[str]:
        """Those of ``child_ids`` that are held."""

    @abstractmethod
    def existing_national_id_hashes(self, digests: Iterable[bytes]) -> set[bytes]:
        """Those of ``digests`` that some held child has as its national-id hash."""

    @abstractmethod
    def replace_child(self, child: StoredChild) -> None:
        """Replace an existing child's row; NotFound if absent; AlreadyExists on a hash clash."""

    @abstractmethod
    def get_child(self, child_id: str) -> StoredChild | None:
        """The child's row, or None."""

    @abstractmethod
    def find_by_national_id_hash(self, digest: bytes) -> str | None:
        """The child id holding this national-id hash, or None."""

    @abstractmethod
    def upsert_placement(self, placement: StoredPlacement) -> None:
        """Set the child's placement for that academic year."""

    @abstractmethod
    def put_care_setting(self, care: StoredCareSetting) -> None:
        """Record the child's care setting from a date on."""

    @abstractmethod
    def add_assessment(self, assessment: StoredAssessment) -> int:
        """Add an assessment and return its new id (1, 2, … per child)."""

    @abstractmethod
    def placements(self, child_id: str) -> list[StoredPlacement]:
        """The child's placements, by academic year."""

    @abstractmethod
    def care_settings(self, child_id: str) -> list[StoredCareSetting]:
        """The child's care settings, by date."""

    @abstractmethod
    def assessments(self, child_id: str) -> list[StoredAssessment]:
        """The child's assessments, by id."""

    @abstractmethod
    def child_ids(self) -> Iterator[str]:
        """Every child id, sorted."""

    @abstractmethod
    def child_count(self) -> int:
        """How many children are stored."""

    @abstractmethod
    def count_table(
        self, academic_year: str, reference_date: dt.date, dimensions: Sequence[str]
    ) -> dict[tuple[str, ...], int]:
        """Sparse counts of children placed in ``academic_year``, by ``dimensions``.

        A child's categories: ``education_form`` from that year's placement; ``sex``;
        ``age_band`` at ``reference_date`` (childreg.codes.age_band); ``care_setting`` from
        the latest care setting with ``since <= reference_date`` else ``not_recorded``;
        ``impairment_band`` from the latest assessment (by date, then id) with
        ``assessment_date <= reference_date`` whose band is set, else ``not_assessed``;
        ``district``; ``region`` of the district. Keys are tuples in ``dimensions`` order.
        """
