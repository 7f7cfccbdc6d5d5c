"""The history part of the store contract (node/store/history.py), on both stores.

Events are appended and kept exactly, numbered uniquely per child; closings happen once;
a closed record stops counting from its closing date on; a rolled-back block keeps
neither.
"""

from __future__ import annotations

import datetime as dt

import pytest

from childreg.errors import AlreadyExists, NotFound
from node.store.base import RecordStore, StoredClosure, StoredEvent
from tests.contract.stores import REF, YEAR, child, place

AT = "2026-12-07T09:30:00Z"


def event(child_id: str = "C1", seq: int = 1, sealed: bytes | None = b"sealed") -> StoredEvent:
    """A history event with sensible defaults."""
    return StoredEvent(child_id, seq, AT, "department-staff/baku.aysel", "corrected", sealed)


def test_events_are_kept_exactly_in_order(store: RecordStore) -> None:
    """Events read back exactly as appended, by seq, with last_event_seq the largest."""
    store.insert_child(child("C1"))
    assert store.last_event_seq("C1") == 0
    store.add_event(event(seq=2, sealed=None))
    store.add_event(event(seq=1))
    assert store.events("C1") == [event(seq=1), event(seq=2, sealed=None)]
    assert store.last_event_seq("C1") == 2
    assert store.events("C9") == []


def test_an_event_number_is_taken_once(store: RecordStore) -> None:
    """A second event with a number already held gives AlreadyExists and changes nothing."""
    store.insert_child(child("C1"))
    store.add_event(event())
    with pytest.raises(AlreadyExists):
        store.add_event(event(sealed=b"other"))
    assert store.events("C1") == [event()]


def test_events_of_an_unknown_child_are_refused(store: RecordStore) -> None:
    """Events for a child not stored give NotFound, in bulk changing nothing."""
    store.insert_child(child("C1"))
    with pytest.raises(NotFound):
        store.add_event(event("C9"))
    with pytest.raises(NotFound):
        store.add_first_events(["C1", "C9"], AT, "x", "imported")
    assert store.events("C1") == []


def test_first_events_are_added_in_bulk(store: RecordStore) -> None:
    """add_first_events gives each child event 1 of that kind without details."""
    for cid in ("C1", "C2"):
        store.insert_child(child(cid))
    store.add_first_events(["C1", "C2"], AT, "spiffe://az.childreg/department-staff/x", "imported")
    assert store.events("C2") == [
        StoredEvent("C2", 1, AT, "spiffe://az.childreg/department-staff/x", "imported", None)
    ]
    assert store.last_event_seq("C1") == 1


def test_a_record_closes_once(store: RecordStore) -> None:
    """close_child records the closing; a second one gives AlreadyExists and keeps the first."""
    store.insert_child(child("C1"))
    assert store.closure("C1") is None
    first = StoredClosure("C1", dt.date(2024, 6, 1), "moved_abroad")
    store.close_child(first)
    with pytest.raises(AlreadyExists):
        store.close_child(StoredClosure("C1", dt.date(2024, 7, 1), "other"))
    assert store.closure("C1") == first
    store.insert_child(child("C2"))
    assert store.closed_children(["C1", "C2", "C9"]) == {"C1"}
    assert store.closed_children([]) == set()
    with pytest.raises(NotFound):
        store.close_child(StoredClosure("C9", dt.date(2024, 6, 1), "other"))


def test_a_closed_record_counts_only_before_its_closing(store: RecordStore) -> None:
    """A child closed after the reference date is counted; on or before it, not."""
    for cid in ("A", "B", "C"):
        store.insert_child(child(cid))
        place(store, cid, "preschool")
    store.close_child(StoredClosure("A", REF + dt.timedelta(days=1), "aged_out"))
    store.close_child(StoredClosure("B", REF, "aged_out"))
    store.close_child(StoredClosure("C", REF - dt.timedelta(days=30), "deceased"))
    assert store.count_table(YEAR, REF, ["education_form"]) == {("preschool",): 1}
    assert store.count_table(YEAR, REF, ["education_form", "sex"]) == {("preschool", "female"): 1}


def test_a_rolled_back_block_keeps_no_history(store: RecordStore) -> None:
    """Events and closings written in an atomic() block that raises are gone afterwards."""
    store.insert_child(child("C1"))

    def change_then_fail() -> None:
        with store.atomic():
            store.add_event(event())
            store.close_child(StoredClosure("C1", dt.date(2024, 6, 1), "other"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        change_then_fail()
    assert store.events("C1") == []
    assert store.closure("C1") is None
