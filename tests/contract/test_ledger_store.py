"""The ledger part of the store contract (node/store/ledger.py), on both stores.

The privacy ledger is append-only and unique per (snapshot, version, table), keeps each
entry's mechanism and rolls back with its block; a secure round's participation is
recorded once and never overwritten.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from fractions import Fraction

import pytest

from childreg.errors import AlreadyExists
from childreg.secagg.roster import Participation
from node.store.base import LedgerEntry, LedgerStore
from tests.contract.stores import YEAR, BoomError, fail_inside_atomic

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


def test_ledger_keeps_entries_per_snapshot_in_append_order(store: LedgerStore) -> None:
    """Entries come back equal, in append order, and only for their snapshot."""
    first, second = ledger_entry("b_table"), ledger_entry("a_table")
    other = ledger_entry("b_table", snapshot="2024/25")
    for entry in (first, other, second):
        store.append_ledger(entry)
    assert store.ledger(YEAR) == [first, second]
    assert store.ledger("2024/25") == [other]
    assert store.ledger("2022/23") == []


def test_ledger_refuses_the_same_table_twice(store: LedgerStore) -> None:
    """(snapshot, version, table) is unique: a second append is refused and changes nothing."""
    store.append_ledger(ledger_entry())
    with pytest.raises(AlreadyExists):
        store.append_ledger(replace(ledger_entry(), rho=Fraction(1, 2)))
    assert [e.rho for e in store.ledger(YEAR)] == [Fraction(1, 32)]


def test_catalogue_versions_span_every_snapshot(store: LedgerStore) -> None:
    """The versions used, with their digests, whatever the snapshot."""
    assert store.catalogue_versions() == {}
    store.append_ledger(ledger_entry())
    store.append_ledger(replace(ledger_entry(snapshot="2024/25"), catalogue_version=2,
                                catalogue_digest="d2"))  # fmt: skip
    assert store.catalogue_versions() == {1: "d1", 2: "d2"}


def test_ledger_append_rolls_back_with_its_atomic_block(store: LedgerStore) -> None:
    """A ledger entry written inside a failed atomic block is not kept."""
    with pytest.raises(BoomError):
        fail_inside_atomic(store, lambda: store.append_ledger(ledger_entry()))
    assert store.ledger(YEAR) == []


def test_ledger_mechanism_round_trips(store: LedgerStore) -> None:
    """An entry's mechanism reads back as written; an entry that names none is per-department."""
    share = replace(ledger_entry("a_table"), mechanism="secure-aggregation")
    store.append_ledger(share)
    store.append_ledger(ledger_entry("b_table"))
    assert [e.mechanism for e in store.ledger(YEAR)] == ["secure-aggregation", "per-department"]
    assert store.ledger(YEAR)[0] == share


# --- secure-aggregation participation ------------------------------------------------


def test_participation_is_none_until_recorded_then_reads_back(store: LedgerStore) -> None:
    """A recorded set reads back equal, for its snapshot only."""
    assert store.participation(YEAR) is None
    store.record_participation(YEAR, Participation(frozenset({"baku", "ganja", "shaki"}), 1))
    assert store.participation(YEAR) == Participation(frozenset({"baku", "ganja", "shaki"}), 1)
    assert store.participation("2024/25") is None


def test_participation_is_never_overwritten(store: LedgerStore) -> None:
    """A second set for the same key changes nothing: the first one recorded holds."""
    first = Participation(frozenset({"a", "b", "c", "d"}), 1)
    store.record_participation(YEAR, first)
    store.record_participation(YEAR, Participation(frozenset({"b", "c", "d"}), 1))
    store.record_participation(YEAR, Participation(first.participants, 2))
    assert store.participation(YEAR) == first


def test_participation_rolls_back_with_its_atomic_block(store: LedgerStore) -> None:
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
