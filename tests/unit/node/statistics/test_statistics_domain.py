"""Tests of a node's dense count vectors (node/statistics/counts.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from childreg import codes
from childreg.errors import FailedPrecondition
from childreg.models import CareSettingIn, ChildIn, ImportRecord, PlacementIn, TableQuery
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.statistics.counts import count_vector
from node.store.base import RecordStore
from node.store.memory import MemoryStore


class FixedCounts(MemoryStore):
    """A store whose count table is given, to test densifying alone."""

    def __init__(self, counts: dict[tuple[str, ...], int]) -> None:
        super().__init__()
        self.counts = counts
        self.asked: list[tuple[str, dt.date, tuple[str, ...]]] = []

    def count_table(
        self, academic_year: str, reference_date: dt.date, dimensions: Sequence[str]
    ) -> dict[tuple[str, ...], int]:
        self.asked.append((academic_year, reference_date, tuple(dimensions)))
        return self.counts


def query(*dimensions: str, year: str = "2023/24") -> TableQuery:
    """A table query."""
    return TableQuery(academic_year=year, dimensions=dimensions)


def test_vector_is_dense_in_grid_order() -> None:
    """Every grid cell has a slot in canonical order; absent cells are zero."""
    store = FixedCounts({("special_school", "male"): 3, ("preschool", "female"): 2})
    vector = count_vector(store, query("education_form", "sex"))
    cells = list(codes.grid(("education_form", "sex")))
    assert len(vector) == len(cells) == codes.grid_size(("education_form", "sex"))
    assert vector[cells.index(("special_school", "male"))] == 3
    assert vector[cells.index(("preschool", "female"))] == 2
    assert sum(vector) == 5
    assert vector.count(0) == len(cells) - 2


def test_vector_positions_match_grid_for_four_dimensions() -> None:
    """With four dimensions every cell lands at its index in codes.grid."""
    dims = ("region", "age_band", "care_setting", "impairment_band")
    cells = list(codes.grid(dims))
    picked = cells[:: len(cells) // 7]
    store = FixedCounts({cell: n + 1 for n, cell in enumerate(picked)})
    vector = count_vector(store, query(*dims))
    assert [vector[cells.index(cell)] for cell in picked] == list(range(1, len(picked) + 1))
    assert sum(vector) == sum(range(1, len(picked) + 1))


def test_vector_asks_the_store_for_the_census_day() -> None:
    """The store is asked for the query's academic year at its census day, in dimension order."""
    store = FixedCounts({})
    assert count_vector(store, query("sex", "region", year="2021/22")) == [0] * (2 * 14)
    assert store.asked == [("2021/22", dt.date(2021, 9, 15), ("sex", "region"))]


def test_category_outside_the_code_list_is_refused() -> None:
    """A stored category missing from the code list makes the vector fail, not vanish."""
    store = FixedCounts({("retired_form",): 4})
    with pytest.raises(FailedPrecondition, match="education_form"):
        count_vector(store, query("education_form"))


def _row(line: int, child_id: str, born: dt.date, district: str, care: bool) -> ImportRecord:
    return ImportRecord(
        line=line,
        child=ChildIn(
            child_id=child_id,
            given_name="A",
            family_name="B",
            date_of_birth=born,
            sex="male" if line % 2 else "female",
            district=district,
        ),
        placement=PlacementIn(
            child_id=child_id, academic_year="2023/24", education_form="inclusive_class"
        ),
        care=(
            CareSettingIn(child_id=child_id, care_setting="kinship_guardianship", since=born)
            if care
            else None
        ),
    )


def test_vectors_from_records_agree_across_stores(store: RecordStore, keyring: Keyring) -> None:
    """Children registered through the domain give the expected vector in each store."""
    registry = Registry(store, keyring)
    registry.import_records(
        [
            _row(2, "A", dt.date(2020, 9, 15), "nasimi", care=True),  # 3 on the census day
            _row(3, "B", dt.date(2020, 9, 16), "nasimi", care=False),  # still 2
            _row(4, "C", dt.date(2010, 1, 1), "shaki", care=True),
        ]
    )
    vector = count_vector(store, query("region", "age_band", "care_setting"))
    cells = list(codes.grid(("region", "age_band", "care_setting")))
    expected = {
        ("baku", "age_3_5", "kinship_guardianship"): 1,
        ("baku", "age_0_2", "not_recorded"): 1,
        ("shaki_zagatala", "age_11_14", "kinship_guardianship"): 1,
    }
    assert {cells[i]: n for i, n in enumerate(vector) if n} == expected
    assert count_vector(store, query("sex", year="2022/23")) == [0, 0]
