"""Store contract, continued: the extract's lean read and the audit append's index.

``extract_source`` must give what the general reads give (the consent of the grant, the
child's row, its latest assessment with the lowest id among those of the latest date, the
given year's form of education), on both stores, outside and inside ``atomic()``.
``audit_append`` with an index that is not the size must refuse and change nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from childreg.errors import AlreadyExists
from node.store.base import ExtractSource, RecordStore, StoredConsent, StoredPlacement
from tests.contract.test_store_contract import STORES, YEAR, assessment, child, place

NOW = dt.datetime(2024, 10, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    """Each store implementation, empty."""
    made = STORES[request.param](tmp_path)
    yield made
    made.close()


def consent(child_id: str = "C1", **changes: object) -> StoredConsent:
    made = StoredConsent(
        consent_id="K" + secrets.token_hex(6),
        child_id=child_id,
        purpose="iep_preparation",
        school="spiffe://fed.test/school/s1",
        valid_from=dt.date(2024, 9, 1),
        valid_until=dt.date(2025, 6, 30),
        evidence_ref="box 4",
        granted_at=NOW,
        granted_by="spiffe://fed.test/department-staff/d1.ann",
        grant_hash=secrets.token_bytes(32),
        sealed_guardian=b"sealed-guardian",
    )
    return dataclasses.replace(made, **changes)  # type: ignore[arg-type]


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
    store.insert_consent(consent())
    assert store.extract_source(secrets.token_bytes(32), YEAR) is None


def test_the_source_of_a_grant_whose_child_is_not_held(store: RecordStore) -> None:
    held = consent("C404")
    store.insert_consent(held)
    assert store.extract_source(held.grant_hash, YEAR) == ExtractSource(held, None, None, None)


def test_the_source_reads_like_the_general_reads(store: RecordStore) -> None:
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
    store.insert_child(child("C1"))
    held = consent("C1")
    store.insert_consent(held)
    assert store.extract_source(held.grant_hash, YEAR) == ExtractSource(
        held, child("C1"), None, None
    )


def test_inside_a_block_the_source_sees_the_blocks_writes(store: RecordStore) -> None:
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


def test_an_append_at_the_wrong_index_is_refused_and_changes_nothing(
    store: RecordStore,
) -> None:
    assert store.audit_append(b"leaf-0", [(0, 0, b"h" * 32)], 0) == 0
    for wrong in (0, 2, 7):
        with pytest.raises(AlreadyExists):
            store.audit_append(b"leaf-x", [(0, 1, b"x" * 32)], wrong)
    assert store.audit_size() == 1
    assert store.audit_leaves(0, 5) == [b"leaf-0"]
    with pytest.raises(KeyError):
        store.audit_hash(0, 1)
    assert store.audit_append(b"leaf-1", [(0, 1, b"i" * 32)], 1) == 1
    assert store.audit_append(b"leaf-2", [(0, 2, b"j" * 32)], 2) == 2
