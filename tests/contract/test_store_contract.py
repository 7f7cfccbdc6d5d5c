"""One contract suite for every RecordStore: the in-memory store and SQLCipher on a real file.

Each test runs against both stores (the ``store`` fixture); the hypothesis test at the end
compares their count tables on random datasets.
"""

from __future__ import annotations

import datetime as dt
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from childreg import codes
from childreg.errors import AlreadyExists, NotFound
from childreg.secagg.roster import Participation
from node.store.base import (
    LedgerEntry,
    NewChild,
    RecordStore,
    StoredAssessment,
    StoredCareSetting,
    StoredChild,
    StoredPlacement,
    records_of,
)
from node.store.memory import MemoryStore
from node.store.sqlcipher import SqlCipherStore
from tests.store_rows import new_child_row

YEAR = "2023/24"
REF = codes.reference_date(YEAR)  # 2023-09-15


def open_sqlcipher(directory: Path) -> SqlCipherStore:
    """A fresh SQLCipher store in ``directory`` with a random key."""
    return SqlCipherStore.open(directory / "node.db", secrets.token_hex(32), create=True)


STORES: dict[str, Callable[[Path], RecordStore]] = {
    "memory": lambda _: MemoryStore(),
    "sqlcipher": open_sqlcipher,
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    """Each store implementation, empty."""
    made = STORES[request.param](tmp_path)
    yield made
    made.close()


def child(
    child_id: str = "C1",
    *,
    nid: bytes | None = None,
    born: dt.date = dt.date(2015, 3, 1),
    sex: str = "female",
    district: str = "nasimi",
    identity: bytes = b"sealed-identity",
) -> StoredChild:
    """A stored child with sensible defaults."""
    return StoredChild(
        child_id, 1, b"wrapped-" + child_id.encode(), nid, born, sex, district, identity
    )


def assessment(
    child_id: str = "C1",
    on: dt.date = dt.date(2022, 5, 1),
    band: str | None = "pct_41_60",
    *,
    given_id: int = 0,
) -> StoredAssessment:
    """A stored assessment with two sealed fields."""
    return StoredAssessment(
        child_id,
        given_id,
        on,
        "Baku PMPC",
        band,
        "inclusive_class",
        on + dt.timedelta(days=365),
        {"diagnoses": b"\x00sealed-d", "supports": b"sealed-s\xff"},
    )


def place(
    store: RecordStore, child_id: str, form: str = "inclusive_class", year: str = YEAR
) -> None:
    """Give a child a placement."""
    store.upsert_placement(StoredPlacement(child_id, year, form, None))


# --- children ---------------------------------------------------------------------------


def test_inserted_child_reads_back_equal(store: RecordStore) -> None:
    """A child read back equals the child inserted, blobs included."""
    c = child(nid=b"\x01" * 32, identity=b"\x00\xff" * 40)
    store.insert_child(c)
    assert store.get_child("C1") == c
    assert store.get_child("C2") is None


def test_duplicate_child_id_is_refused_and_changes_nothing(store: RecordStore) -> None:
    """A second child with the same id gives AlreadyExists and leaves the first unchanged."""
    store.insert_child(child())
    with pytest.raises(AlreadyExists):
        store.insert_child(child(sex="male"))
    assert store.get_child("C1") == child()
    assert store.child_count() == 1


def test_duplicate_national_id_hash_is_refused_and_changes_nothing(store: RecordStore) -> None:
    """A new child with a national-id hash already held gives AlreadyExists and is not added."""
    store.insert_child(child("C1", nid=b"h" * 32))
    with pytest.raises(AlreadyExists):
        store.insert_child(child("C2", nid=b"h" * 32))
    assert store.get_child("C2") is None
    assert store.find_by_national_id_hash(b"h" * 32) == "C1"


def test_children_without_national_id_may_be_many(store: RecordStore) -> None:
    """Several children without a national-id hash are all accepted."""
    store.insert_child(child("C1"))
    store.insert_child(child("C2"))
    assert store.child_count() == 2


def test_find_by_national_id_hash(store: RecordStore) -> None:
    """A child is found by its national-id hash; an unknown hash finds nothing."""
    store.insert_child(child("C1", nid=b"a" * 32))
    assert store.find_by_national_id_hash(b"a" * 32) == "C1"
    assert store.find_by_national_id_hash(b"b" * 32) is None


def test_replace_child_replaces_the_row_and_frees_the_old_hash(store: RecordStore) -> None:
    """Replacing a child stores the new row; its old national-id hash no longer finds it."""
    store.insert_child(child("C1", nid=b"a" * 32))
    new = child("C1", nid=b"b" * 32, sex="male", district="shaki", identity=b"new")
    store.replace_child(new)
    assert store.get_child("C1") == new
    assert store.find_by_national_id_hash(b"a" * 32) is None
    assert store.find_by_national_id_hash(b"b" * 32) == "C1"


def test_replace_child_keeping_its_own_hash_is_allowed(store: RecordStore) -> None:
    """Replacing a child with its own national-id hash is not a clash."""
    store.insert_child(child("C1", nid=b"a" * 32))
    store.replace_child(child("C1", nid=b"a" * 32, sex="male"))
    assert store.get_child("C1") == child("C1", nid=b"a" * 32, sex="male")


def test_replace_absent_child_is_not_found(store: RecordStore) -> None:
    """Replacing a child that does not exist gives NotFound and adds nothing."""
    with pytest.raises(NotFound):
        store.replace_child(child("C9"))
    assert store.child_count() == 0


def test_replace_child_with_another_childs_hash_is_refused(store: RecordStore) -> None:
    """Replacing a child with another child's national-id hash gives AlreadyExists, no change."""
    store.insert_child(child("C1", nid=b"a" * 32))
    store.insert_child(child("C2", nid=b"b" * 32))
    with pytest.raises(AlreadyExists):
        store.replace_child(child("C2", nid=b"a" * 32, sex="male"))
    assert store.get_child("C2") == child("C2", nid=b"b" * 32)
    assert store.find_by_national_id_hash(b"a" * 32) == "C1"


def test_child_ids_are_sorted_and_counted(store: RecordStore) -> None:
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
    store: RecordStore, write: Callable[[RecordStore], object]
) -> None:
    """Placements, care settings and assessments for an unknown child give NotFound."""
    store.insert_child(child("C1"))
    with pytest.raises(NotFound):
        write(store)
    assert store.placements("C9") == []
    assert store.care_settings("C9") == []
    assert store.assessments("C9") == []


def test_placement_is_one_per_child_and_year_ordered_by_year(store: RecordStore) -> None:
    """A placement for the same year replaces the old one; placements come back by year."""
    store.insert_child(child("C1"))
    store.upsert_placement(StoredPlacement("C1", "2023/24", "preschool", None))
    store.upsert_placement(StoredPlacement("C1", "2021/22", "preschool", "School 5"))
    store.upsert_placement(StoredPlacement("C1", "2023/24", "special_school", "School 7"))
    assert store.placements("C1") == [
        StoredPlacement("C1", "2021/22", "preschool", "School 5"),
        StoredPlacement("C1", "2023/24", "special_school", "School 7"),
    ]


def test_care_setting_is_one_per_child_and_date_ordered_by_date(store: RecordStore) -> None:
    """A care setting on the same date replaces the old one; they come back by date."""
    store.insert_child(child("C1"))
    store.put_care_setting(StoredCareSetting("C1", "family", dt.date(2021, 1, 1)))
    store.put_care_setting(StoredCareSetting("C1", "shelter", dt.date(2019, 6, 1)))
    store.put_care_setting(StoredCareSetting("C1", "foster_family", dt.date(2021, 1, 1)))
    assert store.care_settings("C1") == [
        StoredCareSetting("C1", "shelter", dt.date(2019, 6, 1)),
        StoredCareSetting("C1", "foster_family", dt.date(2021, 1, 1)),
    ]


def test_assessment_ids_are_1_2_3_per_child_whatever_is_given(store: RecordStore) -> None:
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


def test_assessment_read_back_does_not_alias_the_store(store: RecordStore) -> None:
    """Mutating the sealed-fields dict of a returned assessment does not change the store."""
    store.insert_child(child("C1"))
    store.add_assessment(assessment("C1"))
    store.assessments("C1")[0].sealed_fields["diagnoses"] = b"changed"
    assert store.assessments("C1")[0].sealed_fields["diagnoses"] == b"\x00sealed-d"


# --- atomic ----------------------------------------------------------------------------


class BoomError(Exception):
    """Raised on purpose inside an atomic block."""


def fail_inside_atomic(store: RecordStore, body: Callable[[], object]) -> None:
    """Run ``body`` inside ``store.atomic()`` and then raise BoomError out of the block."""
    with store.atomic():
        body()
        raise BoomError


def test_atomic_block_rolls_back_every_write_on_exception(store: RecordStore) -> None:
    """An exception leaving atomic() undoes every write made inside the block."""
    store.insert_child(child("C0"))

    def writes() -> None:
        store.insert_child(child("C1", nid=b"a" * 32))
        place(store, "C1")
        place(store, "C0", "special_school")
        store.put_care_setting(StoredCareSetting("C0", "family", dt.date(2020, 1, 1)))
        store.add_assessment(assessment("C0"))
        store.replace_child(child("C0", sex="male"))

    with pytest.raises(BoomError):
        fail_inside_atomic(store, writes)
    assert store.get_child("C1") is None
    assert store.find_by_national_id_hash(b"a" * 32) is None
    assert store.get_child("C0") == child("C0")
    assert store.placements("C0") == []
    assert store.care_settings("C0") == []
    assert store.assessments("C0") == []
    assert store.child_count() == 1
    assert store.add_assessment(assessment("C0")) == 1


def test_atomic_block_commits_on_success(store: RecordStore) -> None:
    """Writes inside a block that ends normally are kept."""
    with store.atomic():
        store.insert_child(child("C1"))
        place(store, "C1")
    assert store.placements("C1") == [StoredPlacement("C1", YEAR, "inclusive_class", None)]


def test_nested_atomic_joins_the_outer_block(store: RecordStore) -> None:
    """An inner block's writes are undone when the outer block fails after it finished."""

    def writes() -> None:
        store.insert_child(child("C1"))
        with store.atomic():
            store.insert_child(child("C2"))

    with pytest.raises(BoomError):
        fail_inside_atomic(store, writes)
    assert store.child_count() == 0


def test_nested_atomic_failure_rolls_back_the_outer_block(store: RecordStore) -> None:
    """An exception from an inner block that leaves the outer one undoes both."""

    def writes() -> None:
        store.insert_child(child("C1"))
        fail_inside_atomic(store, lambda: store.insert_child(child("C2")))

    with pytest.raises(BoomError), store.atomic():
        writes()
    assert store.child_count() == 0
    with store.atomic():
        store.insert_child(child("C3"))
    assert list(store.child_ids()) == ["C3"]


def test_failed_insert_inside_a_block_keeps_the_blocks_other_writes(store: RecordStore) -> None:
    """A refused insert changes nothing, and a block that handles it still commits the rest."""
    store.insert_child(child("C1"))
    with store.atomic():
        store.insert_child(child("C2"))
        with pytest.raises(AlreadyExists):
            store.insert_child(child("C1", sex="male"))
        store.insert_child(child("C3"))
    assert list(store.child_ids()) == ["C1", "C2", "C3"]
    assert store.get_child("C1") == child("C1")


def test_concurrent_atomic_blocks_from_threads_do_not_interfere(store: RecordStore) -> None:
    """Blocks run from many threads commit or roll back whole, never mixing."""
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(25):
                try:
                    with store.atomic():
                        store.insert_child(child(f"T{worker}-{n}"))
                        place(store, f"T{worker}-{n}")
                        if n % 5 == 0:
                            raise BoomError
                except BoomError:
                    pass
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.child_count() == 8 * 20
    assert sum(store.count_table(YEAR, REF, ["sex"]).values()) == 8 * 20


# --- bulk insert of new children -------------------------------------------------------


@dataclass(frozen=True)
class NewRow:
    """A new child's records, and the bulk row they stand for."""

    child: StoredChild
    placement: StoredPlacement
    care: StoredCareSetting | None
    assessment: StoredAssessment | None

    @property
    def row(self) -> NewChild:
        return new_child_row(self.child, self.placement, self.care, self.assessment)


def new_row(
    child_id: str, *, nid: bytes | None = None, care: bool = True, assessed: bool = True
) -> NewRow:
    """A new child with a placement and, unless told otherwise, a care setting and assessment."""
    return NewRow(
        child(child_id, nid=nid),
        StoredPlacement(child_id, YEAR, "special_school", f"School of {child_id}"),
        StoredCareSetting(child_id, "foster_family", dt.date(2019, 4, 1)) if care else None,
        assessment(child_id, given_id=99) if assessed else None,
    )


def rows(*made: NewRow) -> list[NewChild]:
    """The bulk rows of ``made``."""
    return [r.row for r in made]


def test_insert_new_children_stores_every_part_as_the_single_writes_do(
    store: RecordStore,
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
    store: RecordStore,
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
    store: RecordStore, held: StoredChild | None, batch: list[NewRow]
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


def test_insert_new_children_rolls_back_with_the_block(store: RecordStore) -> None:
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


def test_existing_ids_and_hashes_are_exactly_those_held(store: RecordStore) -> None:
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


def test_reads_inside_a_block_see_its_uncommitted_writes(store: RecordStore) -> None:
    """The thread inside atomic() reads its own writes before they are committed."""
    with store.atomic():
        store.insert_new_children(rows(new_row("N1", nid=b"a" * 32)))
        store.insert_child(child("C2"))
        assert store.existing_child_ids(["N1", "C2", "C3"]) == {"N1", "C2"}
        assert store.existing_national_id_hashes([b"a" * 32]) == {b"a" * 32}
        assert store.get_child("C2") == child("C2")
        assert store.child_count() == 2
        assert store.count_table(YEAR, REF, ["sex"]) == {("female",): 1}


def test_other_threads_never_see_a_blocks_uncommitted_writes(store: RecordStore) -> None:
    """A read from another thread while a block is open does not see the block's writes."""
    inserted, reader_started = threading.Event(), threading.Event()
    seen: list[object] = []

    def reader() -> None:
        inserted.wait(timeout=30)
        reader_started.set()
        seen.append(store.get_child("C1"))
        seen.append(store.existing_child_ids(["C1"]))

    thread = threading.Thread(target=reader)
    thread.start()

    def writes() -> None:
        store.insert_child(child("C1"))
        inserted.set()
        assert reader_started.wait(timeout=30)

    with pytest.raises(BoomError):
        fail_inside_atomic(store, writes)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert seen == [None, set()]


# --- read views ------------------------------------------------------------------------


def test_read_view_reads_like_plain_reads(store: RecordStore) -> None:
    """Reads inside a read view return what plain reads return, and views nest."""
    store.insert_new_children(rows(new_row("N1")))
    with store.read_view():
        assert store.get_child("N1") == child("N1")
        with store.read_view():
            assert store.placements("N1") == [new_row("N1").placement]
        assert store.child_count() == 1
    with store.atomic(), store.read_view():  # inside a block: the block's own state
        store.insert_child(child("C2"))
        assert store.child_count() == 2


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.insert_child(child("C2")),
        lambda s: s.insert_new_children(rows(new_row("C2"))),
        lambda s: s.replace_child(child("C1", sex="male")),
        lambda s: place(s, "C1"),
        lambda s: s.put_care_setting(StoredCareSetting("C1", "family", dt.date(2020, 1, 1))),
        lambda s: s.add_assessment(assessment("C1")),
        lambda s: s.atomic().__enter__(),
    ],
    ids=["insert", "bulk", "replace", "placement", "care", "assessment", "atomic"],
)
def test_writing_inside_a_read_view_is_refused(
    store: RecordStore, write: Callable[[RecordStore], object]
) -> None:
    """Any write, or atomic(), inside a read view raises RuntimeError and changes nothing."""
    store.insert_child(child("C1"))
    with store.read_view(), pytest.raises(RuntimeError, match="read_view"):
        write(store)
    assert list(store.child_ids()) == ["C1"]
    assert store.get_child("C1") == child("C1")
    assert (store.placements("C1"), store.care_settings("C1"), store.assessments("C1")) == (
        [],
        [],
        [],
    )
    store.insert_child(child("C3"))  # the store is still usable
    assert store.child_count() == 2


# --- count_table -----------------------------------------------------------------------


def test_count_table_counts_only_children_placed_that_year(store: RecordStore) -> None:
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


def test_count_table_keys_follow_dimension_order(store: RecordStore) -> None:
    """Cell keys list categories in the order the dimensions were asked."""
    store.insert_child(child("A", sex="male", district="shaki"))
    place(store, "A", "home_education")
    assert store.count_table(YEAR, REF, ["sex", "education_form"]) == {
        ("male", "home_education"): 1
    }
    assert store.count_table(YEAR, REF, ["education_form", "district", "sex"]) == {
        ("home_education", "shaki", "male"): 1
    }


def test_count_table_uses_latest_care_setting_on_or_before_the_date(store: RecordStore) -> None:
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
    store: RecordStore,
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
def test_count_table_age_band_at_boundaries(store: RecordStore, born: dt.date, band: str) -> None:
    """Age bands at the reference date switch exactly on birthdays, as codes.age_band says."""
    assert codes.age_band(born, REF) == band
    store.insert_child(child("A", born=born))
    place(store, "A")
    assert store.count_table(YEAR, REF, ["age_band"]) == {(band,): 1}


def test_count_table_region_comes_from_district(store: RecordStore) -> None:
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


def test_count_table_unknown_dimension_is_refused(store: RecordStore) -> None:
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
        district=st.sampled_from(codes.DISTRICTS),
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


def _load(store: RecordStore, child_id: str, spec: ChildSpec) -> None:
    store.insert_child(child(child_id, born=spec.born, sex=spec.sex, district=spec.district))
    for year, form in spec.placements.items():
        place(store, child_id, form, year)
    for since, setting in spec.care:
        store.put_care_setting(StoredCareSetting(child_id, setting, since))
    for on, band in spec.assessments:
        store.add_assessment(assessment(child_id, on, band))


# --- privacy ledger ------------------------------------------------------------------


def ledger_entry(table_id: str = "education_form", *, snapshot: str = YEAR) -> LedgerEntry:
    """A ledger entry of 1/32 for ``table_id``."""
    return LedgerEntry(
        snapshot=snapshot,
        catalogue_version=1,
        catalogue_digest="d1",
        table_id=table_id,
        rho=Fraction(1, 32),
        released=(3, -1, 0, 12),
        released_at=dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC),
        requested_by="spiffe://test.childreg/coordinator/national",
    )


def test_ledger_keeps_entries_per_snapshot_in_append_order(store: RecordStore) -> None:
    """Entries come back equal, in append order, and only for their snapshot."""
    first, second = ledger_entry("b_table"), ledger_entry("a_table")
    other = ledger_entry("b_table", snapshot="2024/25")
    for entry in (first, other, second):
        store.append_ledger(entry)
    assert store.ledger(YEAR) == [first, second]
    assert store.ledger("2024/25") == [other]
    assert store.ledger("2022/23") == []


def test_ledger_refuses_the_same_table_twice(store: RecordStore) -> None:
    """(snapshot, version, table) is unique: a second append is refused and changes nothing."""
    store.append_ledger(ledger_entry())
    with pytest.raises(AlreadyExists):
        store.append_ledger(replace(ledger_entry(), rho=Fraction(1, 2)))
    assert [e.rho for e in store.ledger(YEAR)] == [Fraction(1, 32)]


def test_catalogue_versions_span_every_snapshot(store: RecordStore) -> None:
    """The versions used, with their digests, whatever the snapshot."""
    assert store.catalogue_versions() == {}
    store.append_ledger(ledger_entry())
    store.append_ledger(replace(ledger_entry(snapshot="2024/25"), catalogue_version=2,
                                catalogue_digest="d2"))  # fmt: skip
    assert store.catalogue_versions() == {1: "d1", 2: "d2"}


def test_ledger_append_rolls_back_with_its_atomic_block(store: RecordStore) -> None:
    """A ledger entry written inside a failed atomic block is not kept."""
    with pytest.raises(BoomError):
        fail_inside_atomic(store, lambda: store.append_ledger(ledger_entry()))
    assert store.ledger(YEAR) == []


def test_ledger_mechanism_round_trips(store: RecordStore) -> None:
    """An entry's mechanism reads back as written; an entry that names none is per-department."""
    share = replace(ledger_entry("a_table"), mechanism="secure-aggregation")
    store.append_ledger(share)
    store.append_ledger(ledger_entry("b_table"))
    assert [e.mechanism for e in store.ledger(YEAR)] == ["secure-aggregation", "per-department"]
    assert store.ledger(YEAR)[0] == share


# --- secure-aggregation participation ------------------------------------------------


def test_participation_is_none_until_recorded_then_reads_back(store: RecordStore) -> None:
    """A recorded set reads back equal, for its snapshot only."""
    assert store.participation(YEAR) is None
    store.record_participation(YEAR, Participation(frozenset({"baku", "ganja", "shaki"}), 1))
    assert store.participation(YEAR) == Participation(frozenset({"baku", "ganja", "shaki"}), 1)
    assert store.participation("2024/25") is None


def test_participation_is_never_overwritten(store: RecordStore) -> None:
    """A second set for the same key changes nothing: the first one recorded holds."""
    first = Participation(frozenset({"a", "b", "c", "d"}), 1)
    store.record_participation(YEAR, first)
    store.record_participation(YEAR, Participation(frozenset({"b", "c", "d"}), 1))
    store.record_participation(YEAR, Participation(first.participants, 2))
    assert store.participation(YEAR) == first


def test_participation_rolls_back_with_its_atomic_block(store: RecordStore) -> None:
    """A set recorded inside a failed atomic block is not kept; inside the block it is seen."""
    seen: list[Participation | None] = []

    def record() -> None:
        store.record_participation(YEAR, Participation(frozenset({"a", "b", "c"}), 1))
        seen.append(store.participation(YEAR))

    with pytest.raises(BoomError):
        fail_inside_atomic(store, record)
    assert seen == [Participation(frozenset({"a", "b", "c"}), 1)]
    assert store.participation(YEAR) is None
    with store.atomic():
        record()
    assert store.participation(YEAR) == Participation(frozenset({"a", "b", "c"}), 1)
