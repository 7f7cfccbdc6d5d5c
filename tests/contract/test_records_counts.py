"""The count tables of the store contract (``RecordsStore.count_table``), on both stores.

Which children are counted, in which cell of each dimension; the hypothesis test at the
end compares the two stores' count tables on random datasets.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from childreg import codes
from node.store.base import (
    RecordsStore,
    RecordStore,
    StoredCareSetting,
)
from node.store.memory import MemoryStore
from tests.contract.stores import (
    REF,
    YEAR,
    assessment,
    child,
    open_sqlcipher,
    place,
)

# --- count_table -----------------------------------------------------------------------


def test_count_table_counts_only_children_placed_that_year(store: RecordsStore) -> None:
    """Only children with a placement for the academic year are counted, each once."""
    for child_id in ("A", "B", "C", "D"):
        store.insert_child(child(child_id))
    place(store, "A", "preschool")
    place(store, "B", "special_school")
    place(store, "C", "special_school", year="2022/23")
    place(store, "B", "preschool", year="2022/23")
    assert store.count_table(YEAR, REF, ["education_form"]) == {
        ("preschool",): 1,
        ("special_school",): 1,
    }
    assert store.count_table("2022/23", codes.reference_date("2022/23"), ["education_form"]) == {
        ("special_school",): 1,
        ("preschool",): 1,
    }
    assert store.count_table("2019/20", codes.reference_date("2019/20"), ["sex"]) == {}


def test_count_table_keys_follow_dimension_order(store: RecordsStore) -> None:
    """Cell keys list categories in the order the dimensions were asked."""
    store.insert_child(child("A", sex="male", district="shaki"))
    place(store, "A", "home_education")
    assert store.count_table(YEAR, REF, ["sex", "education_form"]) == {
        ("male", "home_education"): 1
    }
    assert store.count_table(YEAR, REF, ["education_form", "district", "sex"]) == {
        ("home_education", "shaki", "male"): 1
    }


def test_count_table_uses_latest_care_setting_on_or_before_the_date(store: RecordsStore) -> None:
    """Care setting is the latest with since <= reference date, else not_recorded."""
    for child_id in ("A", "B", "C", "D"):
        store.insert_child(child(child_id))
        place(store, child_id)
    store.put_care_setting(StoredCareSetting("A", "family", dt.date(2018, 1, 1)))
    store.put_care_setting(StoredCareSetting("A", "foster_family", dt.date(2022, 1, 1)))
    store.put_care_setting(StoredCareSetting("A", "shelter", REF + dt.timedelta(days=1)))
    store.put_care_setting(StoredCareSetting("B", "shelter", REF))
    store.put_care_setting(StoredCareSetting("C", "family", REF + dt.timedelta(days=1)))
    assert store.count_table(YEAR, REF, ["care_setting"]) == {
        ("foster_family",): 1,
        ("shelter",): 1,
        ("not_recorded",): 2,
    }


def test_count_table_uses_latest_banded_assessment_on_or_before_the_date(
    store: RecordsStore,
) -> None:
    """Impairment band is from the latest banded assessment (date, then id) by the date."""
    for child_id in ("A", "B", "C", "D", "E"):
        store.insert_child(child(child_id))
        place(store, child_id)
    # A: later date wins although added first; an unbanded later one is skipped
    store.add_assessment(assessment("A", dt.date(2023, 1, 1), "pct_81_100"))
    store.add_assessment(assessment("A", dt.date(2021, 1, 1), "pct_25_40"))
    store.add_assessment(assessment("A", dt.date(2023, 6, 1), None))
    # B: same date, higher id wins
    store.add_assessment(assessment("B", dt.date(2022, 1, 1), "pct_25_40"))
    store.add_assessment(assessment("B", dt.date(2022, 1, 1), "pct_61_80"))
    # C: assessed on the reference date counts; after it does not
    store.add_assessment(assessment("C", REF, "pct_41_60"))
    store.add_assessment(assessment("C", REF + dt.timedelta(days=1), "pct_81_100"))
    # D: only after the date; E: only unbanded
    store.add_assessment(assessment("D", REF + dt.timedelta(days=1), "pct_81_100"))
    store.add_assessment(assessment("E", dt.date(2020, 1, 1), None))
    assert store.count_table(YEAR, REF, ["impairment_band"]) == {
        ("pct_81_100",): 1,
        ("pct_61_80",): 1,
        ("pct_41_60",): 1,
        ("not_assessed",): 2,
    }


BOUNDARY_BIRTHS = [
    (dt.date(2023, 9, 15), "age_0_2"),
    (dt.date(2024, 1, 1), "age_0_2"),  # born after the reference date
    (dt.date(2020, 9, 16), "age_0_2"),
    (dt.date(2020, 9, 15), "age_3_5"),
    (dt.date(2017, 9, 16), "age_3_5"),
    (dt.date(2017, 9, 15), "age_6_10"),
    (dt.date(2012, 9, 16), "age_6_10"),
    (dt.date(2012, 9, 15), "age_11_14"),
    (dt.date(2008, 9, 16), "age_11_14"),
    (dt.date(2008, 9, 15), "age_15_17"),
    (dt.date(2005, 9, 16), "age_15_17"),
    (dt.date(2005, 9, 15), "age_18_plus"),
    (dt.date(1990, 1, 1), "age_18_plus"),
    (dt.date(2008, 2, 29), "age_15_17"),
]


@pytest.mark.parametrize(
    ("born", "band"), BOUNDARY_BIRTHS, ids=[str(b) for b, _ in BOUNDARY_BIRTHS]
)
def test_count_table_age_band_at_boundaries(store: RecordsStore, born: dt.date, band: str) -> None:
    """Age bands at the reference date switch exactly on birthdays, as codes.age_band says."""
    assert codes.age_band(born, REF) == band
    store.insert_child(child("A", born=born))
    place(store, "A")
    assert store.count_table(YEAR, REF, ["age_band"]) == {(band,): 1}


def test_count_table_region_comes_from_district(store: RecordsStore) -> None:
    """Region is the district's economic region; districts of one region add up."""
    for child_id, district in (("A", "nasimi"), ("B", "yasamal"), ("C", "shaki"), ("D", "ordubad")):
        store.insert_child(child(child_id, district=district))
        place(store, child_id)
    assert store.count_table(YEAR, REF, ["region"]) == {
        ("baku",): 2,
        ("shaki_zagatala",): 1,
        ("nakhchivan",): 1,
    }
    assert store.count_table(YEAR, REF, ["region", "district"]) == {
        ("baku", "nasimi"): 1,
        ("baku", "yasamal"): 1,
        ("shaki_zagatala", "shaki"): 1,
        ("nakhchivan", "ordubad"): 1,
    }


def test_count_table_unknown_dimension_is_refused(store: RecordsStore) -> None:
    """Asking for a dimension outside the code lists raises KeyError."""
    with pytest.raises(KeyError):
        store.count_table(YEAR, REF, ["national_id"])


# --- both stores agree -----------------------------------------------------------------

YEARS = ("2022/23", "2023/24")


def _boundary_birth() -> st.SearchStrategy[dt.date]:
    return st.builds(
        lambda years, delta: dt.date(2023 - years, 9, 15) + dt.timedelta(days=delta),
        st.integers(0, 20),
        st.integers(-1, 1),
    )


@dataclass(frozen=True)
class ChildSpec:
    """One random child and its history, for loading into each store."""

    born: dt.date
    sex: str
    district: str
    placements: dict[str, str]
    care: list[tuple[dt.date, str]]
    assessments: list[tuple[dt.date, str | None]]


_DATES = st.dates(dt.date(2021, 9, 1), dt.date(2024, 9, 30))
_CHILDREN = st.lists(
    st.builds(
        ChildSpec,
        born=st.one_of(st.dates(dt.date(2000, 1, 1), dt.date(2024, 6, 1)), _boundary_birth()),
        sex=st.sampled_from(codes.SEXES),
        district=st.sampled_from(codes.districts()),
        placements=st.dictionaries(
            st.sampled_from(YEARS), st.sampled_from(codes.EDUCATION_FORMS), max_size=2
        ),
        care=st.lists(st.tuples(_DATES, st.sampled_from(codes.CARE_SETTINGS)), max_size=3),
        assessments=st.lists(
            st.tuples(_DATES, st.none() | st.sampled_from(codes.IMPAIRMENT_BANDS)), max_size=3
        ),
    ),
    max_size=12,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    children=_CHILDREN,
    year=st.sampled_from(YEARS),
    dimensions=st.lists(
        st.sampled_from(sorted(codes.DIMENSIONS)), min_size=1, max_size=4, unique=True
    ),
)
def test_both_stores_give_identical_count_tables(
    children: list[ChildSpec], year: str, dimensions: list[str]
) -> None:
    """Random small datasets give the same count table in the memory and SQLCipher stores."""
    with tempfile.TemporaryDirectory() as tmp:
        stores: list[RecordStore] = [MemoryStore(), open_sqlcipher(Path(tmp))]
        try:
            for s in stores:
                with s.atomic():
                    for n, spec in enumerate(children):
                        _load(s, f"H{n}", spec)
            ref = codes.reference_date(year)
            memory, sql = (s.count_table(year, ref, dimensions) for s in stores)
            assert memory == sql
            placed = sum(1 for spec in children if year in spec.placements)
            assert sum(memory.values()) == placed
            assert all(v > 0 for v in memory.values())
        finally:
            for s in stores:
                s.close()


def _load(store: RecordsStore, child_id: str, spec: ChildSpec) -> None:
    store.insert_child(child(child_id, born=spec.born, sex=spec.sex, district=spec.district))
    for year, form in spec.placements.items():
        place(store, child_id, form, year)
    for since, setting in spec.care:
        store.put_care_setting(StoredCareSetting(child_id, setting, since))
    for on, band in spec.assessments:
        store.add_assessment(assessment(child_id, on, band))
