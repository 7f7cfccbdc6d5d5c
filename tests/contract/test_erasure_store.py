"""The erasure part of the store contract (node/store/erasure.py), on both stores.

Erasing removes every row of the child from every concern and keeps one tombstone; it is
idempotent (a restore re-applies it); other children are untouched; a rolled-back block
erases nothing; the retention rules' candidate queries see closings and birth dates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from node.store.base import (
    RecordStore,
    StoredBreakGlass,
    StoredCareSetting,
    StoredClosure,
    StoredErasure,
    StoredEvent,
)
from tests.contract.stores import (
    NOW,
    REF,
    YEAR,
    BoomError,
    assessment,
    child,
    consent,
    fail_inside_atomic,
    place,
)

AT = "2026-12-07T09:30:00Z"


def tombstone(n: int = 1, at: str = AT) -> StoredErasure:
    """A tombstone with a 32-byte pseudonym made from ``n``."""
    return StoredErasure(bytes([n]) * 32, at, "department-operator/baku.ops", "guardian_request")


def held_child(store: RecordStore, child_id: str, nid: bytes) -> None:
    """A child with a row in every table erasure must empty."""
    store.insert_child(child(child_id, nid=nid, identity=b"identity-" + child_id.encode()))
    place(store, child_id)
    store.put_care_setting(StoredCareSetting(child_id, "foster_family", dt.date(2019, 4, 1)))
    store.add_assessment(assessment(child_id))
    store.replace_child_tokens(child_id, {b"t-" + child_id.encode(), b"shared"})
    store.add_event(StoredEvent(child_id, 1, AT, "staff", "registered", b"sealed"))
    store.close_child(StoredClosure(child_id, dt.date(2024, 6, 1), "moved_abroad"))
    store.insert_consent(consent(child_id))
    store.add_breakglass(StoredBreakGlass("B" + child_id, child_id, NOW, "staff", b"sealed"))


def assert_nothing_held(store: RecordStore, child_id: str, nid: bytes) -> None:
    """No read of any concern returns anything of ``child_id``."""
    assert store.get_child(child_id) is None
    assert store.find_by_national_id_hash(nid) is None
    assert store.existing_child_ids([child_id]) == set()
    assert store.placements(child_id) == []
    assert store.care_settings(child_id) == []
    assert store.assessments(child_id) == []
    assert store.child_tokens(child_id) == set()
    assert store.events(child_id) == []
    assert store.closure(child_id) is None
    assert store.consents_of(child_id) == []
    assert store.breakglass_of(child_id) == []
    assert child_id not in list(store.child_ids())


def test_erasing_removes_every_row_and_keeps_a_tombstone(store: RecordStore) -> None:
    """erase_child leaves no row of the child in any concern, and one tombstone."""
    held_child(store, "C1", b"n1" * 16)
    held_child(store, "C2", b"n2" * 16)
    assert store.erase_child("C1", tombstone()) is True
    assert_nothing_held(store, "C1", b"n1" * 16)
    assert store.erased_children() == [tombstone()]
    assert store.erasure_of(tombstone().pseudonym) == tombstone()
    assert store.erasure_of(bytes(32)) is None
    assert store.get_child("C2") is not None
    assert store.child_tokens("C2") == {b"t-C2", b"shared"}
    assert store.children_matching([{b"shared"}]) == {"C2"}
    assert len(store.consents_of("C2")) == 1
    assert store.child_count() == 1


def test_erasing_is_idempotent(store: RecordStore) -> None:
    """A second erase_child of the same child keeps the first tombstone and returns False."""
    held_child(store, "C1", b"n1" * 16)
    assert store.erase_child("C1", tombstone()) is True
    later = dataclasses.replace(tombstone(), erased_at="2027-01-01T00:00:00Z", actor="other")
    assert store.erase_child("C1", later) is False
    assert store.erased_children() == [tombstone()]
    assert_nothing_held(store, "C1", b"n1" * 16)


def test_erasing_again_removes_a_child_held_again(store: RecordStore) -> None:
    """A child held again after its erasure (as a restore brings back) is erased again."""
    held_child(store, "C1", b"n1" * 16)
    store.erase_child("C1", tombstone())
    held_child(store, "C1", b"n1" * 16)
    assert store.erase_child("C1", tombstone()) is False
    assert_nothing_held(store, "C1", b"n1" * 16)
    assert store.erased_children() == [tombstone()]


def test_erasing_a_child_never_held_keeps_the_tombstone(store: RecordStore) -> None:
    """erase_child of an id not held records its tombstone and removes nothing else."""
    held_child(store, "C2", b"n2" * 16)
    assert store.erase_child("C9", tombstone(9)) is True
    assert store.erased_children() == [tombstone(9)]
    assert store.get_child("C2") is not None


def test_tombstones_come_in_time_order(store: RecordStore) -> None:
    """erased_children orders by erasure time, then pseudonym."""
    store.erase_child("C3", tombstone(3, "2026-12-08T00:00:00Z"))
    store.erase_child("C2", tombstone(2))
    store.erase_child("C1", tombstone(1))
    later = tombstone(3, "2026-12-08T00:00:00Z")
    assert store.erased_children() == [tombstone(1), tombstone(2), later]


def test_a_rolled_back_block_erases_nothing(store: RecordStore) -> None:
    """An erasure inside a block that fails leaves the child and no tombstone."""
    held_child(store, "C1", b"n1" * 16)
    with pytest.raises(BoomError):
        fail_inside_atomic(store, lambda: store.erase_child("C1", tombstone()))
    assert store.get_child("C1") is not None
    assert len(store.events("C1")) == 1
    assert store.erased_children() == []


def test_an_erased_child_is_not_counted(store: RecordStore) -> None:
    """Count tables computed after an erasure do not count the erased child."""
    for cid in ("C1", "C2"):
        store.insert_child(child(cid))
        place(store, cid)
    assert sum(store.count_table(YEAR, REF, ["sex"]).values()) == 2
    store.erase_child("C1", tombstone())
    assert store.count_table(YEAR, REF, ["sex"]) == {("female",): 1}


def test_retention_candidates(store: RecordStore) -> None:
    """closed_on_or_before and born_on_or_before give exactly the children due by date."""
    store.insert_child(child("C1", born=dt.date(2000, 1, 1)))
    store.insert_child(child("C2", born=dt.date(2010, 1, 1)))
    store.insert_child(child("C3", born=dt.date(2000, 1, 2)))
    store.close_child(StoredClosure("C2", dt.date(2020, 6, 1), "moved_abroad"))
    store.close_child(StoredClosure("C3", dt.date(2021, 6, 1), "other"))
    assert store.closed_on_or_before(dt.date(2020, 6, 1)) == [("C2", dt.date(2020, 6, 1))]
    assert store.closed_on_or_before(dt.date(2030, 1, 1)) == [
        ("C2", dt.date(2020, 6, 1)),
        ("C3", dt.date(2021, 6, 1)),
    ]
    assert store.born_on_or_before(dt.date(2000, 1, 1)) == ["C1"]
    assert store.born_on_or_before(dt.date(2000, 1, 2)) == ["C1", "C3"]
    store.erase_child("C2", tombstone())
    assert store.closed_on_or_before(dt.date(2030, 1, 1)) == [("C3", dt.date(2021, 6, 1))]


def test_an_empty_child_id_records_the_tombstone_alone(store: RecordStore) -> None:
    """erase_child("", tombstone) removes nothing and keeps the tombstone, once."""
    held_child(store, "C1", b"n1" * 16)
    assert store.erase_child("", tombstone(7)) is True
    assert store.erase_child("", tombstone(7)) is False
    assert store.erased_children() == [tombstone(7)]
    assert store.get_child("C1") is not None
    assert len(store.events("C1")) == 1
