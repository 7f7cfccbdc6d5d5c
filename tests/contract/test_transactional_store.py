"""The transaction part of the store contract (node/store/transactional.py), on both stores.

``atomic()`` blocks commit or roll back whole, nest, and stay invisible to other threads
until they commit; ``read_view()`` is one consistent state and refuses writes; and one
block spans every part of a store, so a change, its ledger entry, its audit leaf and a
consent commit or roll back together.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import pytest

from childreg.errors import AlreadyExists
from childreg.secagg.roster import Participation
from node.store.base import RecordStore, StoredCareSetting, StoredPlacement
from tests.contract.stores import (
    REF,
    YEAR,
    BoomError,
    assessment,
    child,
    consent,
    fail_inside_atomic,
    new_row,
    place,
    rows,
)
from tests.contract.test_ledger_store import ledger_entry

# --- atomic ----------------------------------------------------------------------------


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


# --- one transaction across the parts of a store ---------------------------------------


def write_every_part(store: RecordStore) -> None:
    """One write to each part of ``store``: a child, a ledger entry, an audit leaf, a consent."""
    store.insert_child(child("C1"))
    store.append_ledger(ledger_entry())
    store.record_participation(YEAR, Participation(frozenset({"a", "b", "c"}), 1))
    store.audit_append(b"leaf-0", [(0, 0, b"h" * 32)], store.audit_size())
    store.insert_consent(consent("C1"))


def test_one_block_rolls_back_the_writes_of_every_part(store: RecordStore) -> None:
    """A failed block undoes its records, ledger, participation, audit and consent writes alike."""
    with pytest.raises(BoomError):
        fail_inside_atomic(store, lambda: write_every_part(store))
    assert store.child_count() == 0
    assert store.ledger(YEAR) == []
    assert store.participation(YEAR) is None
    assert store.audit_size() == 0
    assert store.consents_of("C1") == []


def test_one_block_commits_the_writes_of_every_part(store: RecordStore) -> None:
    """A block that ends normally keeps its writes to every part, and its reads saw them all."""
    with store.atomic():
        write_every_part(store)
        seen = (store.child_count(), len(store.ledger(YEAR)), store.audit_size())
    assert seen == (1, 1, 1)
    assert store.get_child("C1") == child("C1")
    assert store.ledger(YEAR) == [ledger_entry()]
    assert store.audit_leaves(0, 1) == [b"leaf-0"]
    assert [c.child_id for c in store.consents_of("C1")] == ["C1"]
