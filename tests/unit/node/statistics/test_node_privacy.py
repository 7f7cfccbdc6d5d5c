"""The node's statistics desk: catalogue only, deterministic noise, a ledger it enforces itself."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from childreg import codes
from childreg.catalogue import Catalogue, sign_catalogue
from childreg.errors import (
    ChildregError,
    FailedPrecondition,
    InvalidInput,
    PermissionDenied,
    ResourceExhausted,
)
from childreg.models import ImportRecord, NoisyTableQuestion
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.statistics.desk import StatisticsDesk
from node.store.base import RecordStore
from tests.unit import secagg_nodes
from tools.dev.federation import default_catalogue

YEAR = "2023/24"
FEDERATION = "test.childreg"
AUTHORITY = SigningKey(bytes(range(32)))


def signed(catalogue: Catalogue, key: SigningKey = AUTHORITY) -> bytes:
    """``catalogue`` signed by ``key``."""
    return sign_catalogue(catalogue, key)


def question(blob: bytes, table_id: str = "education_form", year: str = YEAR) -> NoisyTableQuestion:
    """The coordinator's question."""
    return NoisyTableQuestion(signed_catalogue=blob, table_id=table_id, academic_year=year)


def import_record(i: int) -> ImportRecord:
    """Child number ``i``, placed in 2023/24 in one of the education forms, aged 5 to 11."""
    return secagg_nodes.import_record(i, born_from=2012, birth_years=6)


class CountSpy:
    """Wraps a store and records whether the children's records were counted."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self.counted = 0

    def __getattr__(self, name: str) -> Any:
        if name == "count_table":
            self.counted += 1
        return getattr(self.store, name)


@pytest.fixture
def desk_for(keyring: Keyring) -> Callable[..., StatisticsDesk]:
    """Make a desk over a store, with the test authority pinned."""

    def make(store: Any, max_rho: Fraction = Fraction(1, 4)) -> StatisticsDesk:
        return secagg_nodes.statistics_desk(store, keyring, max_rho)

    return make


@pytest.fixture
def filled(store: RecordStore, keyring: Keyring) -> RecordStore:
    """A store with a few children placed in 2023/24."""
    registry = Registry(store, keyring)
    registry.import_records([import_record(i) for i in range(30)])
    return store


def test_same_question_twice_is_identical_and_charged_once(
    filled: RecordStore, desk_for: Callable[..., StatisticsDesk]
) -> None:
    """Deterministic noise: the repeat is the same vector and the ledger has one entry."""
    desk = desk_for(filled)
    blob = signed(default_catalogue(FEDERATION))
    first = desk.answer(question(blob), "coordinator")
    second = desk.answer(question(blob), "coordinator")
    assert first.counts == second.counts
    assert (first.charged, second.charged) == (True, False)
    assert [(e.table_id, e.rho) for e in filled.ledger(YEAR)] == [
        ("education_form", Fraction(1, 32))
    ]
    assert all(type(c) is int for c in first.counts)


def test_noise_is_added_to_every_cell_including_zeros(
    store: RecordStore, desk_for: Callable[..., StatisticsDesk]
) -> None:
    """An empty department's table is not all zeros, and noisy zeros can be negative."""
    desk = desk_for(store)
    blob = signed(default_catalogue(FEDERATION))
    values = [
        c for t in ("education_form", "education_form_by_age_band")
        for c in desk.answer(question(blob, t), "coordinator").counts
    ]  # fmt: skip
    assert len(values) == 11 + 66
    assert sum(v != 0 for v in values) > len(values) // 2
    assert min(values) < 0


def test_another_snapshot_gets_other_noise_and_its_own_ledger(
    store: RecordStore, desk_for: Callable[..., StatisticsDesk]
) -> None:
    """The PRF covers the snapshot: 2024/25's noise differs, and each snapshot pays once."""
    desk = desk_for(store)
    blob = signed(default_catalogue(FEDERATION))
    a = desk.answer(question(blob, year=YEAR), "coordinator").counts
    b = desk.answer(question(blob, year="2024/25"), "coordinator").counts
    assert a != b
    assert len(store.ledger(YEAR)) == len(store.ledger("2024/25")) == 1


def test_budget_cap_holds_across_catalogue_versions_before_any_count(
    filled: RecordStore, desk_for: Callable[..., StatisticsDesk]
) -> None:
    """All 8 tables fit the cap; a re-signed version 2 (fresh noise) is refused uncounted."""
    spy = CountSpy(filled)
    desk = desk_for(spy)
    v1 = signed(default_catalogue(FEDERATION, version=1))
    for table_id in (t.id for t in default_catalogue(FEDERATION).tables):
        desk.answer(question(v1, table_id), "coordinator")
    assert desk.spent(YEAR) == Fraction(1, 4)
    counted = spy.counted
    v2 = signed(default_catalogue(FEDERATION, version=2))
    with pytest.raises(ResourceExhausted, match="privacy budget of snapshot 2023/24"):
        desk.answer(question(v2), "coordinator")
    assert spy.counted == counted
    assert len(filled.ledger(YEAR)) == 8
    # What was paid for stays answerable, for free.
    assert desk.answer(question(v1), "coordinator").charged is False


def test_the_nodes_own_cap_wins_when_lower(
    store: RecordStore, desk_for: Callable[..., StatisticsDesk]
) -> None:
    """A node configured at 1/16 answers two 1/32 tables and refuses the third."""
    desk = desk_for(store, Fraction(1, 16))
    blob = signed(default_catalogue(FEDERATION))
    ids = [t.id for t in default_catalogue(FEDERATION).tables]
    desk.answer(question(blob, ids[0]), "coordinator")
    desk.answer(question(blob, ids[1]), "coordinator")
    with pytest.raises(ResourceExhausted):
        desk.answer(question(blob, ids[2]), "coordinator")


@pytest.mark.parametrize(
    ("make_blob", "error"),
    [
        (lambda: signed(default_catalogue(FEDERATION), SigningKey(bytes(32))), PermissionDenied),
        (lambda: signed(default_catalogue("other.childreg")), PermissionDenied),
        (
            lambda: signed(default_catalogue(FEDERATION)).replace(b'"1/32"', b'"1/2"', 1),
            PermissionDenied,
        ),
        (lambda: b"{not json", InvalidInput),
    ],
    ids=["other-authority", "other-federation", "tampered", "malformed"],
)
def test_bad_catalogues_are_refused_before_any_count_or_charge(
    filled: RecordStore,
    desk_for: Callable[..., StatisticsDesk],
    make_blob: Callable[[], bytes],
    error: type[ChildregError],
) -> None:
    """Wrong key, wrong federation, altered content, garbage: refused, nothing spent or read."""
    spy = CountSpy(filled)
    with pytest.raises(error):
        desk_for(spy).answer(question(make_blob()), "coordinator")
    assert spy.counted == 0
    assert filled.ledger(YEAR) == []


def test_refusals_do_not_depend_on_the_data(
    tmp_path: Path, keyring: Keyring, desk_for: Callable[..., StatisticsDesk]
) -> None:
    """The same bad questions to an empty and a full department give identical errors."""
    from node.store.memory import MemoryStore

    empty, full = MemoryStore(), MemoryStore()
    Registry(full, keyring).import_records([import_record(i) for i in range(40)])
    good = signed(default_catalogue(FEDERATION))
    bad = [
        question(good, "no_such_table"),
        question(signed(default_catalogue(FEDERATION), SigningKey(bytes(32)))),
    ]
    messages: list[list[str]] = []
    for store in (empty, full):
        desk = desk_for(store, Fraction(1, 32))
        desk.answer(question(good), "coordinator")  # spends this node's whole cap
        seen = []
        for q in [*bad, question(good, "sex_by_age_band")]:
            with pytest.raises(ChildregError) as info:
                desk.answer(q, "coordinator")
            seen.append(f"{type(info.value).__name__}: {info.value}")
        messages.append(seen)
    assert messages[0] == messages[1]


def test_a_failure_while_counting_charges_and_releases_nothing(
    filled: RecordStore, desk_for: Callable[..., StatisticsDesk]
) -> None:
    """Charge, count and noise are one transaction: if counting fails, the charge is undone
    and nothing was released; the next answer is charged normally."""

    class Broken(CountSpy):
        def __getattr__(self, name: str) -> Any:
            if name == "count_table":
                raise RuntimeError("disk gone")
            return getattr(self.store, name)

    blob = signed(default_catalogue(FEDERATION))
    with pytest.raises(RuntimeError):
        desk_for(Broken(filled)).answer(question(blob), "coordinator")
    assert filled.ledger(YEAR) == []
    assert desk_for(filled).answer(question(blob), "coordinator").charged is True


def test_a_repeat_returns_what_was_released_even_after_the_records_change(
    store: RecordStore, keyring: Keyring, desk_for: Callable[..., StatisticsDesk]
) -> None:
    """Asking before and after an import gives the same vector: a recount with the same
    noise would reveal the new child's cell exactly."""
    desk = desk_for(store)
    blob = signed(default_catalogue(FEDERATION))
    before = desk.answer(question(blob), "coordinator")
    Registry(store, keyring).import_records([import_record(7)])
    after = desk.answer(question(blob), "coordinator")
    assert after.counts == before.counts
    assert after.charged is False
    assert [e.released for e in store.ledger(YEAR)] == [tuple(before.counts)]


def test_one_version_number_cannot_stand_for_two_catalogues(
    store: RecordStore, desk_for: Callable[..., StatisticsDesk]
) -> None:
    """Re-signing version 1 with other content is refused, before any count or charge."""
    desk = desk_for(store)
    desk.answer(question(signed(default_catalogue(FEDERATION))), "coordinator")
    changed = default_catalogue(FEDERATION).model_copy(update={"display_threshold": 5})
    with pytest.raises(PermissionDenied, match="other content"):
        desk.answer(question(signed(changed), "sex_by_age_band"), "coordinator")
    assert len(store.ledger(YEAR)) == 1


def test_no_new_charge_under_a_superseded_version(
    store: RecordStore, desk_for: Callable[..., StatisticsDesk]
) -> None:
    """Once version 2 was answered, version 1 may repeat what it paid for, nothing new."""
    desk = desk_for(store)
    v1 = signed(default_catalogue(FEDERATION, version=1))
    v2 = signed(default_catalogue(FEDERATION, version=2))
    first = desk.answer(question(v1), "coordinator")
    desk.answer(question(v2, "sex_by_age_band"), "coordinator")
    assert desk.answer(question(v1), "coordinator").counts == first.counts
    with pytest.raises(FailedPrecondition, match="older than version 2"):
        desk.answer(question(v1, "impairment_band_by_sex"), "coordinator")


def test_dense_over_the_code_lists(
    filled: RecordStore, desk_for: Callable[..., StatisticsDesk]
) -> None:
    """Every catalogue table has its full grid, whatever the data."""
    desk = desk_for(filled)
    blob = signed(default_catalogue(FEDERATION))
    for table in default_catalogue(FEDERATION).tables:
        answer = desk.answer(question(blob, table.id), "coordinator")
        assert len(answer.counts) == codes.grid_size(table.dimensions)
