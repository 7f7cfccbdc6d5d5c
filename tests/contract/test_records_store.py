"""The records part of the store contract (node/store/records.py), on both stores.

Children, placements, care settings, assessments and the bulk insert of an import; count
tables are test_records_counts.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

import pytest

from childreg.errors import AlreadyExists, NotFound
from node.store.base import (
    RecordsStore,
    StoredCareSetting,
    StoredChild,
    StoredPlacement,
    records_of,
)
from tests.contract.stores import (
    REF,
    YEAR,
    BoomError,
    NewRow,
    assessment,
    child,
    fail_inside_atomic,
    new_row,
    rows,
)

# --- children ---------------------------------------------------------------------------


def test_inserted_child_reads_back_equal(store: RecordsStore) -> None:
    """A child read back equals the child inserted, blobs included."""
    c = child(nid=b"\x01" * 32, identity=b"\x00\xff" * 40)
    store.insert_child(c)
    assert store.get_child("C1") == c
    assert store.get_child("C2") is None


def test_duplicate_child_id_is_refused_and_changes_nothing(store: RecordsStore) -> None:
    """A second child with the same id gives AlreadyExists and leaves the first unchanged."""
    store.insert_child(child())
    with pytest.raises(AlreadyExists):
        store.insert_child(child(sex="male"))
    assert store.get_child("C1") == child()
    assert store.child_count() == 1


def test_duplicate_national_id_hash_is_refused_and_changes_nothing(store: RecordsStore) -> None:
    """A new child with a national-id hash already held gives AlreadyExists and is not added."""
    store.insert_child(child("C1", nid=b"h" * 32))
    with pytest.raises(AlreadyExists):
        store.insert_child(child("C2", nid=b"h" * 32))
    assert store.get_child("C2") is None
    assert store.find_by_national_id_hash(b"h" * 32) == "C1"


def test_children_without_national_id_may_be_many(store: RecordsStore) -> None:
    """Several children without a national-id hash are all accepted."""
    store.insert_child(child("C1"))
    store.insert_child(child("C2"))
    assert store.child_count() == 2


def test_find_by_national_id_hash(store: RecordsStore) -> None:
    """A child is found by its national-id hash; an unknown hash finds nothing."""
    store.insert_child(child("C1", nid=b"a" * 32))
    assert store.find_by_national_id_hash(b"a" * 32) == "C1"
    assert store.find_by_national_id_hash(b"b" * 32) is None


def test_replace_child_replaces_the_row_and_frees_the_old_hash(store: RecordsStore) -> None:
    """Replacing a child stores the new row; its old national-id hash no longer finds it."""
    store.insert_child(child("C1", nid=b"a" * 32))
    new = child("C1", nid=b"b" * 32, sex="male", district="shaki", identity=b"new")
    store.replace_child(new)
    assert store.get_child("C1") == new
    assert store.find_by_national_id_hash(b"a" * 32) is None
    assert store.find_by_national_id_hash(b"b" * 32) == "C1"


def test_replace_child_keeping_its_own_hash_is_allowed(store: RecordsStore) -> None:
    """Replacing a child with its own national-id hash is not a clash."""
    store.insert_child(child("C1", nid=b"a" * 32))
    store.replace_child(child("C1", nid=b"a" * 32, sex="male"))
    assert store.get_child("C1") == child("C1", nid=b"a" * 32, sex="male")


def test_replace_absent_child_is_not_found(store: RecordsStore) -> None:
    """Replacing a child that does not exist gives NotFound and adds nothing."""
    with pytest.raises(NotFound):
        store.replace_child(child("C9"))
    assert store.child_count() == 0


def test_replace_child_with_another_childs_hash_is_refused(store: RecordsStore) -> None:
    """Replacing a child with another child's national-id hash gives AlreadyExists, no change."""
    store.insert_child(child("C1", nid=b"a" * 32))
    store.insert_child(child("C2", nid=b"b" * 32))
    with pytest.raises(AlreadyExists):
        store.replace_child(child("C2", nid=b"a" * 32, sex="male"))
    assert store.get_child("C2") == child("C2", nid=b"b" * 32)
    assert store.find_by_national_id_hash(b"a" * 32) == "C1"


def test_child_ids_are_sorted_and_counted(store: RecordsStore) -> None:
    """child_ids() yields every id sorted (across pages) and child_count() counts them."""
    ids = [f"K{n:05d}" for n in range(2345)]
    with store.atomic():
        for child_id in reversed(ids):
            store.insert_child(child(child_id))
    assert list(store.child_ids()) == ids
    assert store.child_count() == len(ids)


# --- writes naming a child -------------------------------------------------------------


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.upsert_placement(StoredPlacement("C9", YEAR, "preschool", None)),
        lambda s: s.put_care_setting(StoredCareSetting("C9", "family", dt.date(2020, 1, 1))),
        lambda s: s.add_assessment(assessment("C9")),
    ],
    ids=["placement", "care", "assessment"],
)
def test_writes_naming_an_absent_child_are_not_found(
    store: RecordsStore, write: Callable[[RecordsStore], object]
) -> None:
    """Placements, care settings and assessments for an unknown child give NotFound."""
    store.insert_child(child("C1"))
    with pytest.raises(NotFound):
        write(store)
    assert store.placements("C9") == []
    assert store.care_settings("C9") == []
    assert store.assessments("C9") == []


def test_placement_is_one_per_child_and_year_ordered_by_year(store: RecordsStore) -> None:
    """A placement for the same year replaces the old one; placements come back by year."""
    store.insert_child(child("C1"))
    store.upsert_placement(StoredPlacement("C1", "2023/24", "preschool", None))
    store.upsert_placement(StoredPlacement("C1", "2021/22", "preschool", "School 5"))
    store.upsert_placement(StoredPlacement("C1", "2023/24", "special_school", "School 7"))
    assert store.placements("C1") == [
        StoredPlacement("C1", "2021/22", "preschool", "School 5"),
        StoredPlacement("C1", "2023/24", "special_school", "School 7"),
    ]


def test_care_setting_is_one_per_child_and_date_ordered_by_date(store: RecordsStore) -> None:
    """A care setting on the same date replaces the old one; they come back by date."""
    store.insert_child(child("C1"))
    store.put_care_setting(StoredCareSetting("C1", "family", dt.date(2021, 1, 1)))
    store.put_care_setting(StoredCareSetting("C1", "shelter", dt.date(2019, 6, 1)))
    store.put_care_setting(StoredCareSetting("C1", "foster_family", dt.date(2021, 1, 1)))
    assert store.care_settings("C1") == [
        StoredCareSetting("C1", "shelter", dt.date(2019, 6, 1)),
        StoredCareSetting("C1", "foster_family", dt.date(2021, 1, 1)),
    ]


def test_assessment_ids_are_1_2_3_per_child_whatever_is_given(store: RecordsStore) -> None:
    """add_assessment ignores the given id and numbers each child's assessments 1, 2, 3."""
    store.insert_child(child("C1"))
    store.insert_child(child("C2"))
    assert store.add_assessment(assessment("C1", given_id=42)) == 1
    assert store.add_assessment(assessment("C2", given_id=7)) == 1
    assert store.add_assessment(assessment("C1", dt.date(2020, 1, 1), given_id=1)) == 2
    assert store.add_assessment(assessment("C1", band=None)) == 3
    got = store.assessments("C1")
    assert [a.assessment_id for a in got] == [1, 2, 3]
    assert got[0] == replace(assessment("C1"), assessment_id=1)
    assert got[2].impairment_band is None
    assert [a.assessment_id for a in store.assessments("C2")] == [1]


def test_assessment_read_back_does_not_alias_the_store(store: RecordsStore) -> None:
    """Mutating the sealed-fields dict of a returned assessment does not change the store."""
    store.insert_child(child("C1"))
    store.add_assessment(assessment("C1"))
    store.assessments("C1")[0].sealed_fields["diagnoses"] = b"changed"
    assert store.assessments("C1")[0].sealed_fields["diagnoses"] == b"\x00sealed-d"


# --- bulk insert of new children -------------------------------------------------------


def test_insert_new_children_stores_every_part_as_the_single_writes_do(
    store: RecordsStore,
) -> None:
    """Bulk-inserted children read back with placement, care setting and assessment number 1."""
    made = [new_row("N1", nid=b"1" * 32), new_row("N2", care=False, assessed=False)]
    store.insert_new_children(rows(*made))
    assert store.get_child("N1") == child("N1", nid=b"1" * 32)
    assert store.find_by_national_id_hash(b"1" * 32) == "N1"
    assert store.placements("N1") == [made[0].placement]
    assert store.care_settings("N1") == [made[0].care]
    assert store.assessments("N1") == [replace(assessment("N1"), assessment_id=1)]
    assert (store.care_settings("N2"), store.assessments("N2")) == ([], [])
    assert store.add_assessment(assessment("N1")) == 2
    assert store.count_table(YEAR, REF, ["education_form", "care_setting"]) == {
        ("special_school", "foster_family"): 1,
        ("special_school", "not_recorded"): 1,
    }
    store.insert_new_children([])
    assert list(store.child_ids()) == ["N1", "N2"]


def test_insert_new_children_agrees_with_insert_child_on_surrogate_order(
    store: RecordsStore,
) -> None:
    """Children added one by one and in bulk, interleaved, are all kept with their own records."""
    store.insert_child(child("A"))
    store.insert_new_children(rows(new_row("B"), new_row("C")))
    store.insert_child(child("D"))
    store.insert_new_children(rows(new_row("E")))
    for child_id in ("B", "C", "E"):
        assert store.placements(child_id) == [new_row(child_id).placement]
    assert store.placements("A") == store.placements("D") == []
    assert store.child_count() == 5


@pytest.mark.parametrize(
    ("held", "batch"),
    [
        (child("C1"), [new_row("N1"), new_row("C1")]),
        (child("C1", nid=b"h" * 32), [new_row("N1"), new_row("N2", nid=b"h" * 32)]),
        (None, [new_row("N1"), new_row("N2"), new_row("N1")]),
        (None, [new_row("N1", nid=b"h" * 32), new_row("N2", nid=b"h" * 32)]),
    ],
    ids=["held-id", "held-hash", "repeated-id", "repeated-hash"],
)
def test_insert_new_children_refuses_the_whole_batch_and_keeps_the_block_usable(
    store: RecordsStore, held: StoredChild | None, batch: list[NewRow]
) -> None:
    """A held or repeated id or hash gives AlreadyExists, stores no row, and the block commits."""
    if held is not None:
        store.insert_child(held)
    with store.atomic():
        store.insert_child(child("BEFORE"))
        with pytest.raises(AlreadyExists):
            store.insert_new_children(rows(*batch))
        store.insert_new_children(rows(new_row("AFTER")))
    expected = sorted(["BEFORE", "AFTER", *([held.child_id] if held else [])])
    assert list(store.child_ids()) == expected
    assert store.placements("N1") == []
    assert store.assessments("N1") == []
    assert store.count_table(YEAR, REF, ["sex"]) == {("female",): 1}


def test_insert_new_children_rolls_back_with_the_block(store: RecordsStore) -> None:
    """Children bulk-inserted inside a block that fails are gone afterwards."""
    with pytest.raises(BoomError):
        fail_inside_atomic(
            store, lambda: store.insert_new_children(rows(new_row("N1", nid=b"a" * 32)))
        )
    assert store.child_count() == 0
    assert store.existing_national_id_hashes([b"a" * 32]) == set()
    assert store.count_table(YEAR, REF, ["sex"]) == {}


def test_a_bulk_row_stands_for_its_records() -> None:
    """records_of gives back the records a row was made of (its assessment numbered 1)."""
    made = new_row("N1", nid=b"1" * 32)
    assert records_of(made.row) == (
        made.child,
        made.placement,
        made.care,
        replace(made.assessment, assessment_id=1) if made.assessment else None,
    )
    bare = new_row("N2", care=False, assessed=False)
    assert records_of(bare.row) == (bare.child, bare.placement, None, None)


def test_existing_ids_and_hashes_are_exactly_those_held(store: RecordsStore) -> None:
    """The existing_* look-ups return the held values among those asked, however many are asked."""
    store.insert_child(child("C1", nid=b"a" * 32))
    store.insert_child(child("C2"))
    asked_ids = ["C1", "C2", "C3", "C1", *(f"X{n}" for n in range(1200))]
    assert store.existing_child_ids(asked_ids) == {"C1", "C2"}
    assert store.existing_child_ids(iter(["C2"])) == {"C2"}
    assert store.existing_child_ids([]) == set()
    asked_hashes = [b"a" * 32, b"b" * 32, *(n.to_bytes(32, "big") for n in range(1200))]
    assert store.existing_national_id_hashes(asked_hashes) == {b"a" * 32}
    assert store.existing_national_id_hashes([]) == set()
