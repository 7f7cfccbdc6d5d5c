"""The consents part of the store contract (node/store/consents.py), on both stores.

Consents are unique by id and by grant, withdrawn once, listed oldest first; emergency
accesses are kept per child. ``extract_source`` must give what the general reads give
(the consent of the grant, the child's row, its latest assessment with the lowest id
among those of the latest date, the given year's form of education), on both stores,
outside and inside ``atomic()``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from childreg.errors import AlreadyExists
from node.store.base import (
    ConsentStore,
    ExtractSource,
    RecordStore,
    StoredBreakGlass,
    StoredConsent,
    StoredPlacement,
)
from tests.contract.stores import NOW, STORES, YEAR, assessment, child, consent, place

# --- consents and emergency accesses ---------------------------------------------------


def test_a_consent_reads_back_and_its_id_and_grant_are_unique(store: ConsentStore) -> None:
    """A consent reads back equal; another with its id or its grant hash is refused, no change."""
    held = consent("C1")
    store.insert_consent(held)
    assert store.get_consent(held.consent_id) == held
    assert store.get_consent("K-absent") is None
    with pytest.raises(AlreadyExists):
        store.insert_consent(replace(consent("C2"), consent_id=held.consent_id))
    with pytest.raises(AlreadyExists):
        store.insert_consent(replace(consent("C2"), grant_hash=held.grant_hash))
    assert store.consents_of("C2") == []
    assert store.get_consent(held.consent_id) == held


def test_a_consent_is_withdrawn_once(store: ConsentStore) -> None:
    """Withdrawing a standing consent marks it; withdrawing it again, or an absent one, is False."""
    held = consent("C1")
    store.insert_consent(held)
    assert store.withdraw_consent(held.consent_id, NOW)
    assert not store.withdraw_consent(held.consent_id, NOW + dt.timedelta(days=1))
    assert not store.withdraw_consent("K-absent", NOW)
    assert store.get_consent(held.consent_id) == replace(held, withdrawn_at=NOW)


def test_a_childs_consents_come_oldest_first(store: ConsentStore) -> None:
    """consents_of lists only the child's consents, by the time they were granted."""
    late = consent("C1", granted_at=NOW + dt.timedelta(hours=2))
    early = consent("C1", granted_at=NOW - dt.timedelta(days=3))
    store.insert_consent(late)
    store.insert_consent(consent("C2"))
    store.insert_consent(early)
    assert store.consents_of("C1") == [early, late]
    assert store.consents_of("C3") == []


def test_emergency_accesses_are_kept_per_child_oldest_first(store: ConsentStore) -> None:
    """Each emergency access reads back equal, among its child's own, in the order made."""
    made = [
        StoredBreakGlass(f"B{n}", child_id, NOW + dt.timedelta(minutes=n), "staff", b"sealed")
        for n, child_id in enumerate(["C1", "C2", "C1"])
    ]
    for entry in made:
        store.add_breakglass(entry)
    assert store.breakglass_of("C1") == [made[0], made[2]]
    assert store.breakglass_of("C2") == [made[1]]
    assert store.breakglass_of("C3") == []


# --- the extract's read ----------------------------------------------------------------


def expected(store: RecordStore, held: StoredConsent, year: str) -> ExtractSource:
    """The same answer from the general reads."""
    row = store.get_child(held.child_id)
    if row is None:
        return ExtractSource(held, None, None, None)
    kept = store.assessments(held.child_id)  # by id: max() keeps the first of a date
    latest = max(kept, key=lambda a: a.assessment_date, default=None)
    forms = [p.education_form for p in store.placements(held.child_id) if p.academic_year == year]
    return ExtractSource(held, row, latest, forms[0] if forms else None)


def test_an_unknown_grant_has_no_source(store: RecordStore) -> None:
    """A grant hash that no consent holds has no extract source."""
    store.insert_consent(consent())
    assert store.extract_source(secrets.token_bytes(32), YEAR) is None


def test_the_source_of_a_grant_whose_child_is_not_held(store: RecordStore) -> None:
    """A consent whose child is not held gives its source with no child, assessment or form."""
    held = consent("C404")
    store.insert_consent(held)
    assert store.extract_source(held.grant_hash, YEAR) == ExtractSource(held, None, None, None)


def test_the_source_reads_like_the_general_reads(store: RecordStore) -> None:
    """The source is what the general reads give: the latest assessment and that year's form."""
    store.insert_child(child("C1"))
    store.insert_child(child("C2"))
    place(store, "C1", "special_school", "2023/24")
    place(store, "C1", "inclusive_class", "2024/25")
    place(store, "C2", "home_schooling", "2024/25")
    for on in (dt.date(2024, 5, 2), dt.date(2021, 1, 1), dt.date(2024, 5, 2)):
        store.add_assessment(assessment("C1", on, band=None))
    store.add_assessment(assessment("C2", dt.date(2020, 1, 1)))
    held = consent("C1", withdrawn_at=NOW)  # the store reads; the desk judges
    store.insert_consent(held)
    got = store.extract_source(held.grant_hash, "2024/25")
    assert got == expected(store, held, "2024/25")
    assert got is not None
    assert got.education_form == "inclusive_class"
    assert got.assessment is not None
    assert got.assessment.assessment_id == 1  # the first of the two of 2024-05-02
    assert store.extract_source(held.grant_hash, "2030/31") == expected(store, held, "2030/31")


def test_a_child_without_assessment_or_placement(store: RecordStore) -> None:
    """A held child without assessment or placement gives its row with neither."""
    store.insert_child(child("C1"))
    held = consent("C1")
    store.insert_consent(held)
    assert store.extract_source(held.grant_hash, YEAR) == ExtractSource(
        held, child("C1"), None, None
    )


def test_inside_a_block_the_source_sees_the_blocks_writes(store: RecordStore) -> None:
    """Inside atomic() the source sees the block's own consent, placement and withdrawal."""
    store.insert_child(child("C1"))
    held = consent("C1")
    with store.atomic():
        store.insert_consent(held)
        store.upsert_placement(StoredPlacement("C1", YEAR, "inclusive_class", None))
        got = store.extract_source(held.grant_hash, YEAR)
        assert got is not None
        assert got.education_form == "inclusive_class"
        assert store.withdraw_consent(held.consent_id, NOW)
        again = store.extract_source(held.grant_hash, YEAR)
        assert again is not None
        assert again.consent.withdrawn_at is not None


def test_the_source_does_not_alias_the_store(store: RecordStore) -> None:
    """Mutating the sealed fields of a returned source's assessment does not change the store."""
    store.insert_child(child("C1"))
    store.add_assessment(assessment("C1"))
    held = consent("C1")
    store.insert_consent(held)
    got = store.extract_source(held.grant_hash, YEAR)
    assert got is not None
    assert got.assessment is not None
    got.assessment.sealed_fields["diagnoses"] = b"changed"
    again = store.extract_source(held.grant_hash, YEAR)
    assert again is not None
    assert again.assessment is not None
    assert again.assessment.sealed_fields["diagnoses"] == b"\x00sealed-d"


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(sorted(STORES)),
    dates=st.lists(st.sampled_from([dt.date(2022, 1, 1), dt.date(2023, 6, 1)]), max_size=4),
    years=st.lists(st.sampled_from(["2023/24", "2024/25"]), unique=True),
    asked=st.sampled_from(["2023/24", "2024/25"]),
)
def test_both_stores_agree_with_the_general_reads(
    tmp_path_factory: pytest.TempPathFactory,
    kind: str,
    dates: list[dt.date],
    years: list[str],
    asked: str,
) -> None:
    """On random histories each store's source equals what its general reads give."""
    made = STORES[kind](tmp_path_factory.mktemp("src"))
    try:
        made.insert_child(child("C1"))
        for on in dates:
            made.add_assessment(assessment("C1", on))
        for year in years:
            place(made, "C1", "inclusive_class" if year == "2024/25" else "special_school", year)
        held = consent("C1")
        made.insert_consent(held)
        assert made.extract_source(held.grant_hash, asked) == expected(made, held, asked)
    finally:
        made.close()
