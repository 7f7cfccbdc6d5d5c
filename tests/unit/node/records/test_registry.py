"""Tests of the records domain (node/records/registry.py) over both stores."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from childreg.errors import (
    AlreadyExists,
    FailedPrecondition,
    ImportRejected,
    KeyProblem,
    NotFound,
    Violation,
)
from childreg.history import Correction
from childreg.models import (
    AssessmentIn,
    CareSettingIn,
    ChildIn,
    FunctioningItem,
    ImportRecord,
    PlacementIn,
)
from node.crypto.keys import Keyring
from node.records.registry import (
    IDENTITY_FIELDS,
    IMPORT_BATCH,
    Registry,
    _canonical_functioning,
    _canonical_identity,
    _canonical_strings,
)
from node.store.base import RecordStore, StoredAssessment
from node.store.memory import MemoryStore
from tests.strategies import functioning
from tests.unit.node.records.children import a_child


@pytest.fixture
def registry(store: RecordStore, keyring: Keyring) -> Registry:
    """A registry over the store."""
    return Registry(store, keyring)


def an_assessment(child_id: str = "C1", **changes: Any) -> AssessmentIn:
    """A valid assessment with every sealed field filled."""
    fields: dict[str, Any] = {
        "child_id": child_id,
        "assessment_date": dt.date(2023, 5, 2),
        "commission": "Baku PMPC",
        "impairment_band": "pct_61_80",
        "icf_codes": ("d140.2", "b167.3"),
        "diagnoses": ("F84.0", "G80.1"),
        "functioning": (
            FunctioningItem(domain="seeing", level="some_difficulty"),
            FunctioningItem(domain="anxiety", level="weekly"),
        ),
        "recommended_form": "inclusive_class",
        "supports": ("speech_therapy", "teaching_assistant"),
        "accommodations": ("extra_time",),
        "next_review": dt.date(2024, 5, 2),
    }
    return AssessmentIn(**(fields | changes))


def a_row(line: int, child_id: str, **child_changes: Any) -> ImportRecord:
    """An import row with placement, care setting and assessment."""
    return ImportRecord(
        line=line,
        child=a_child(child_id, **child_changes),
        placement=PlacementIn(
            child_id=child_id, academic_year="2023/24", education_form="special_school"
        ),
        care=CareSettingIn(child_id=child_id, care_setting="family", since=dt.date(2020, 1, 1)),
        assessment=an_assessment(child_id),
    )


# --- children --------------------------------------------------------------------------


def test_registered_child_reads_back_equal(registry: Registry) -> None:
    """A registered child reads back with the same identifying record and nothing else."""
    registry.register_child(a_child())
    view = registry.get_child("C1")
    assert view.child == a_child()
    assert (view.placements, view.care_settings, view.assessments) == ((), (), ())


def test_identity_is_sealed_and_national_id_is_hashed(
    registry: Registry, store: RecordStore, keyring: Keyring
) -> None:
    """The store holds identity only sealed, and the national id only as its keyed hash."""
    registry.register_child(a_child())
    stored = store.get_child("C1")
    assert stored is not None
    for clear in ("Aysel", "Məmmədova", a_child().national_id, "+994"):
        assert clear is not None
        assert clear.encode() not in stored.sealed_identity
    assert stored.national_id_hash == keyring.national_id_hash(a_child().national_id or "")
    assert store.find_by_national_id_hash(stored.national_id_hash) == "C1"


def test_child_without_national_id_has_no_hash(registry: Registry, store: RecordStore) -> None:
    """A child registered without a national id stores no hash and reads back without one."""
    registry.register_child(a_child(national_id=None, guardian_name=None, guardian_phone=None))
    stored = store.get_child("C1")
    assert stored is not None
    assert stored.national_id_hash is None
    assert registry.get_child("C1").child.national_id is None


def test_registering_a_taken_child_id_is_refused(registry: Registry) -> None:
    """A second child with the same id gives AlreadyExists and the first is unchanged."""
    registry.register_child(a_child())
    with pytest.raises(AlreadyExists) as info:
        registry.register_child(a_child(given_name="Other", national_id="AZ99999999"))
    assert "Other" not in str(info.value)
    assert "AZ99999999" not in str(info.value)
    assert registry.get_child("C1").child == a_child()


def test_registering_a_taken_national_id_is_refused_without_naming_it(
    registry: Registry, store: RecordStore
) -> None:
    """A new child with a national id already held gives AlreadyExists; the id is not shown."""
    registry.register_child(a_child("C1", national_id="AZ11111111"))
    with pytest.raises(AlreadyExists) as info:
        registry.register_child(a_child("C2", national_id="AZ11111111"))
    assert "AZ11111111" not in str(info.value)
    assert store.get_child("C2") is None


def test_get_unknown_child_is_not_found(registry: Registry) -> None:
    """Reading a child that does not exist gives NotFound."""
    with pytest.raises(NotFound):
        registry.get_child("nobody")


def test_correct_child_changes_identity_and_keeps_the_key(
    registry: Registry, store: RecordStore
) -> None:
    """Correcting a child replaces its record but keeps its wrapped data key."""
    registry.register_child(a_child())
    registry.record_assessment(an_assessment())
    before = store.get_child("C1")
    updated = a_child(given_name="Aygün", national_id="AZ22222222", district="shaki")
    registry.correct_child(
        Correction(
            child_id="C1",
            reason="wrong form",
            given_name="Aygün",
            national_id="AZ22222222",
            district="shaki",
        )
    )
    after = store.get_child("C1")
    assert before is not None
    assert after is not None
    assert (after.wrapped_key, after.key_version) == (before.wrapped_key, before.key_version)
    view = registry.get_child("C1")
    assert view.child == updated
    assert view.assessments == (an_assessment(),)  # still opens with the same key
    assert store.find_by_national_id_hash(before.national_id_hash or b"") is None


def test_correct_unknown_child_is_not_found(registry: Registry, store: RecordStore) -> None:
    """Correcting a child that does not exist gives NotFound and creates nothing."""
    with pytest.raises(NotFound):
        registry.correct_child(Correction(child_id="C1", reason="typo", given_name="X"))
    assert store.child_count() == 0


def test_correct_to_another_childs_national_id_is_refused(registry: Registry) -> None:
    """Correcting a child to a national id another child holds gives AlreadyExists, no change."""
    registry.register_child(a_child("C1", national_id="AZ11111111"))
    registry.register_child(a_child("C2", national_id="AZ22222222"), not_duplicate_reason="twins")
    with pytest.raises(AlreadyExists):
        registry.correct_child(
            Correction(child_id="C2", reason="typo", national_id="AZ11111111", given_name="X")
        )
    assert registry.get_child("C2").child == a_child("C2", national_id="AZ22222222")


# --- placements, care, assessments -----------------------------------------------------


def test_history_reads_back_in_order(registry: Registry) -> None:
    """Placements, care settings and assessments read back as recorded, in order."""
    registry.register_child(a_child())
    p1 = PlacementIn(child_id="C1", academic_year="2023/24", education_form="special_school")
    p0 = PlacementIn(
        child_id="C1", academic_year="2022/23", education_form="preschool", institution="KG 4"
    )
    registry.record_placement(p1)
    registry.record_placement(p0)
    c1 = CareSettingIn(child_id="C1", care_setting="foster_family", since=dt.date(2022, 2, 1))
    c0 = CareSettingIn(child_id="C1", care_setting="family", since=dt.date(2015, 3, 14))
    registry.record_care_setting(c1)
    registry.record_care_setting(c0)
    a1 = an_assessment()
    a2 = an_assessment(
        assessment_date=dt.date(2023, 6, 1), diagnoses=(), functioning=(), impairment_band=None
    )
    assert registry.record_assessment(a1) == 1
    assert registry.record_assessment(a2) == 2
    view = registry.get_child("C1")
    assert view.placements == (p0, p1)
    assert view.care_settings == (c0, c1)
    assert view.assessments == (a1, a2)


@pytest.mark.parametrize(
    "record",
    [
        lambda r: r.record_placement(
            PlacementIn(child_id="C9", academic_year="2023/24", education_form="preschool")
        ),
        lambda r: r.record_care_setting(
            CareSettingIn(child_id="C9", care_setting="family", since=dt.date(2020, 1, 1))
        ),
        lambda r: r.record_assessment(an_assessment("C9")),
    ],
    ids=["placement", "care", "assessment"],
)
def test_recording_for_an_unknown_child_is_not_found(registry: Registry, record: Any) -> None:
    """Placements, care settings and assessments for an unknown child give NotFound."""
    with pytest.raises(NotFound):
        record(registry)


def test_sensitive_assessment_fields_are_sealed_each_on_its_own(
    registry: Registry, store: RecordStore
) -> None:
    """Each sensitive assessment field is stored sealed, none in the clear."""
    registry.register_child(a_child())
    registry.record_assessment(an_assessment())
    (stored,) = store.assessments("C1")
    assert set(stored.sealed_fields) == {
        "icf_codes",
        "diagnoses",
        "functioning",
        "supports",
        "accommodations",
    }
    blob = b"".join(stored.sealed_fields.values())
    for clear in (b"F84.0", b"d140.2", b"speech_therapy", b"extra_time", b"seeing"):
        assert clear not in blob


def test_sealed_fields_moved_to_another_assessment_do_not_open(
    registry: Registry, store: RecordStore
) -> None:
    """An assessment whose sealed fields were copied from another one fails to open."""
    registry.register_child(a_child())
    registry.record_assessment(an_assessment())
    (first,) = store.assessments("C1")
    store.add_assessment(first)  # same ciphertext, now assessment 2
    with pytest.raises(KeyProblem, match="tampered or moved"):
        registry.get_child("C1")


def test_sealed_fields_swapped_between_fields_do_not_open(
    registry: Registry, store: RecordStore
) -> None:
    """Ciphertext moved from one field to another of the same assessment fails to open."""
    registry.register_child(a_child())
    registry.register_child(a_child("C2"), not_duplicate_reason="twins")
    registry.record_assessment(an_assessment("C2"))
    (stored,) = store.assessments("C2")
    fields = dict(stored.sealed_fields)
    fields["diagnoses"], fields["supports"] = fields["supports"], fields["diagnoses"]
    store.add_assessment(replace(stored, sealed_fields=fields))
    registry.record_assessment(an_assessment("C1"))
    assert registry.get_child("C1").assessments == (an_assessment("C1"),)
    with pytest.raises(KeyProblem):
        registry.get_child("C2")


def test_identity_or_key_copied_to_another_child_does_not_open(
    registry: Registry, store: RecordStore
) -> None:
    """A child whose sealed identity or wrapped key was copied from another child fails to open."""
    registry.register_child(a_child("C1"))
    registry.register_child(a_child("C2"), not_duplicate_reason="twins")
    one, two = store.get_child("C1"), store.get_child("C2")
    assert one is not None
    assert two is not None
    store.replace_child(replace(two, sealed_identity=one.sealed_identity))
    with pytest.raises(KeyProblem):
        registry.get_child("C2")
    store.replace_child(replace(two, wrapped_key=one.wrapped_key))
    with pytest.raises(KeyProblem):
        registry.get_child("C2")


class SkippingStore(MemoryStore):
    """A faulty store that skips an assessment id."""

    def add_assessment(self, assessment: StoredAssessment) -> int:
        super().add_assessment(assessment)
        return super().add_assessment(assessment)


def test_unexpected_assessment_id_is_refused_and_rolled_back(keyring: Keyring) -> None:
    """If the store assigns an id other than the one sealed for, nothing is recorded."""
    store = SkippingStore()
    registry = Registry(store, keyring)
    registry.register_child(a_child())
    with pytest.raises(FailedPrecondition):
        registry.record_assessment(an_assessment())
    assert store.assessments("C1") == []


# --- import ----------------------------------------------------------------------------


def test_import_adds_every_row_with_its_history(registry: Registry, store: RecordStore) -> None:
    """A clean import returns the number of rows and every child reads back whole."""
    rows = [a_row(n + 2, f"C{n}") for n in range(5)]
    assert registry.import_records(rows) == 5
    assert store.child_count() == 5
    view = registry.get_child("C3")
    assert view.child == rows[3].child
    assert view.placements == (rows[3].placement,)
    assert view.care_settings == (rows[3].care,)
    assert view.assessments == (rows[3].assessment,)


def test_import_of_nothing_imports_nothing(registry: Registry) -> None:
    """An empty import returns 0."""
    assert registry.import_records([]) == 0


def test_import_writes_rows_a_batch_at_a_time(registry: Registry, store: RecordStore) -> None:
    """Rows are written a batch at a time while the input is consumed, not collected first."""
    written: list[int] = []

    def rows() -> Iterator[ImportRecord]:
        for n in range(2 * IMPORT_BATCH + 3):
            if n % IMPORT_BATCH == 0:
                written.append(store.child_count())
            yield a_row(n + 2, f"C{n:04d}")

    assert registry.import_records(rows()) == 2 * IMPORT_BATCH + 3
    assert written == [0, IMPORT_BATCH, 2 * IMPORT_BATCH]
    assert store.child_count() == 2 * IMPORT_BATCH + 3
    last = f"C{2 * IMPORT_BATCH + 2:04d}"
    assert registry.get_child(last).assessments == (an_assessment(last),)


def test_imported_assessment_is_number_1_and_the_next_is_2(
    registry: Registry, store: RecordStore
) -> None:
    """An imported child's assessment opens as number 1; one recorded later is number 2."""
    registry.import_records([a_row(2, "C1")])
    assert [a.assessment_id for a in store.assessments("C1")] == [1]
    later = an_assessment(assessment_date=dt.date(2024, 1, 9), diagnoses=("F90.0",))
    assert registry.record_assessment(later) == 2
    assert registry.get_child("C1").assessments == (an_assessment(), later)


def test_import_collects_every_violation_and_imports_nothing(
    registry: Registry, store: RecordStore, keyring: Keyring
) -> None:
    """Bad rows, in-batch duplicates and children already held are all reported; none imported."""
    registry.register_child(a_child("OLD", national_id="AZ00000001"))
    pre_bad: Sequence[Violation] = [
        Violation("child.date_of_birth", "must not be in the future", 4),
        Violation("placement.education_form", "unknown form of education", 4),
    ]
    items: list[ImportRecord | Sequence[Violation]] = [
        a_row(2, "A", national_id="AZ10000001"),
        a_row(3, "B", national_id="AZ10000002"),
        pre_bad,
        a_row(5, "A", national_id="AZ10000003"),  # duplicate id in the batch
        a_row(6, "C", national_id="AZ10000002"),  # duplicate national id in the batch
        a_row(7, "OLD", national_id="AZ10000004"),  # id already held
        a_row(8, "D", national_id="AZ00000001"),  # national id already held
        a_row(9, "OLD", national_id="AZ00000001"),  # both already held
        a_row(10, "E", national_id="AZ10000005"),
    ]
    with pytest.raises(ImportRejected) as info:
        registry.import_records(items)
    assert str(info.value) == "6 bad rows; nothing was imported"
    assert info.value.violations == [
        *pre_bad,
        Violation("child_id", "duplicate child_id (first on line 2)", 5),
        Violation("national_id", "duplicate national_id (first on line 3)", 6),
        Violation("child_id", "a child with this child_id already exists", 7),
        Violation("national_id", "a child with this national_id already exists", 8),
        Violation("child_id", "a child with this child_id already exists", 9),
        Violation("national_id", "a child with this national_id already exists", 9),
    ]
    assert list(store.child_ids()) == ["OLD"]
    assert (
        store.find_by_national_id_hash(Keyring.national_id_hash(registry._keys, "AZ10000001"))
        is None
    )
    text = "\n".join([str(info.value), *(str(v) for v in info.value.violations)])
    for personal in ("AZ100", "AZ000", "Aysel", "Məmmədova", "2015"):
        assert personal not in text


def test_import_of_only_prevalidated_bad_rows_is_rejected(registry: Registry) -> None:
    """Rows already found bad alone make the import fail with their violations."""
    bad = [Violation("child.sex", "unknown sex", 2)]
    with pytest.raises(ImportRejected) as info:
        registry.import_records([bad])
    assert info.value.violations == bad
    assert str(info.value).startswith("1 bad rows")


def test_import_reports_violations_in_input_order_across_batches(
    registry: Registry, store: RecordStore
) -> None:
    """Violations of pre-checked rows, duplicates and held children stay in input order."""
    registry.register_child(a_child("OLD", national_id="AZ00000001"))
    pre_bad = [Violation("child.sex", "unknown sex", 5)]
    items: list[ImportRecord | Sequence[Violation]] = []
    for n in range(IMPORT_BATCH + 40):
        line = n + 2
        if line == 5:
            items.append(pre_bad)
        elif line == IMPORT_BATCH + 1:  # last row of the first batch: held national id
            items.append(a_row(line, "NEW", national_id="AZ00000001"))
        elif line == IMPORT_BATCH + 10:  # second batch: id first seen on line 2
            items.append(a_row(line, "R0", national_id="AZ77777777"))
        elif line == IMPORT_BATCH + 11:  # second batch: held id, then again
            items.append(a_row(line, "OLD", national_id="AZ55555555"))
        elif line == IMPORT_BATCH + 12:
            items.append(a_row(line, "OLD", national_id="AZ66666666"))
        else:
            items.append(a_row(line, f"R{n}"))
    with pytest.raises(ImportRejected) as info:
        registry.import_records(items)
    b = IMPORT_BATCH
    assert info.value.violations == [
        *pre_bad,
        Violation("national_id", "a child with this national_id already exists", b + 1),
        Violation("child_id", "duplicate child_id (first on line 2)", b + 10),
        Violation("child_id", "a child with this child_id already exists", b + 11),
        Violation("child_id", "a child with this child_id already exists", b + 12),
    ]
    assert list(store.child_ids()) == ["OLD"]


class CountingKeyring:
    """A keyring that counts the child keys it makes and the fields it seals."""

    def __init__(self, inner: Keyring) -> None:
        self.inner = inner
        self.keys_made = 0
        self.sealed = 0

    def new_child_key(self, child_id: str) -> tuple[bytes, bytes, int]:
        self.keys_made += 1
        return self.inner.new_child_key(child_id)

    def seal(self, child_key: bytes, child_id: str, context: str, plaintext: bytes) -> bytes:
        self.sealed += 1
        return self.inner.seal(child_key, child_id, context, plaintext)

    def seal_new_child(
        self, child_id: str, values: Sequence[tuple[str, bytes]]
    ) -> tuple[bytes, int, list[bytes]]:
        self.keys_made += 1
        self.sealed += len(values)
        return self.inner.seal_new_child(child_id, values)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize(
    ("first_bad", "sealed_rows"),
    [("pre-checked", 10), ("held", IMPORT_BATCH)],
    ids=["pre-checked-row", "held-child"],
)
def test_import_stops_sealing_after_the_first_violation_but_keeps_checking(
    store: RecordStore, keyring: Keyring, first_bad: str, sealed_rows: int
) -> None:
    """Once a violation is known no further row is sealed or written; later ones are reported."""
    Registry(store, keyring).register_child(a_child("OLD", national_id="AZ00000001"))
    counting = CountingKeyring(keyring)
    registry = Registry(store, counting)  # type: ignore[arg-type]
    rows: list[ImportRecord | Sequence[Violation]] = [
        a_row(n + 2, f"C{n}") for n in range(3 * IMPORT_BATCH)
    ]
    if first_bad == "pre-checked":  # known on arrival: the rows before it were sealed
        rows[10] = first = [Violation("child.sex", "unknown sex", 12)]
    else:  # known when its batch is checked: that batch was sealed, nothing after it
        rows[10] = a_row(12, "OLD", national_id="AZ10000001")
        first = [Violation("child_id", "a child with this child_id already exists", 12)]
    rows[-1] = a_row(3 * IMPORT_BATCH + 1, "C0", national_id="AZ99999999")
    with pytest.raises(ImportRejected) as info:
        registry.import_records(rows)
    assert info.value.violations == [
        *first,
        Violation("child_id", "duplicate child_id (first on line 2)", 3 * IMPORT_BATCH + 1),
    ]
    assert counting.keys_made == sealed_rows
    assert counting.sealed == sealed_rows * 6  # identity and five assessment fields per row
    assert list(store.child_ids()) == ["OLD"]


_IDENTITY_TEXT = st.text(max_size=12) | st.sampled_from(["", 'é"\\\u2028\x00', "Məmmədova"])


@settings(max_examples=60, deadline=None)
@given(
    given_name=_IDENTITY_TEXT,
    national_id=st.none() | st.just("AZ12345678"),
    guardian_name=st.none() | _IDENTITY_TEXT,
    strings=st.lists(_IDENTITY_TEXT, max_size=4),
    functioning=functioning(),
)
def test_canonical_json_helpers_match_json_dumps(
    given_name: str,
    national_id: str | None,
    guardian_name: str | None,
    strings: list[str],
    functioning: tuple[FunctioningItem, ...],
) -> None:
    """The fast canonical-JSON builders give exactly json.dumps with sorted keys, compact, UTF-8."""

    def canonical(value: Any) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8"
        )

    child = ChildIn.model_construct(  # unvalidated: any text, the encoder must cope
        **(
            a_child().model_dump()
            | {"given_name": given_name, "national_id": national_id, "guardian_name": guardian_name}
        )
    )
    identity = {name: getattr(child, name) for name in IDENTITY_FIELDS}
    assert _canonical_identity(child) == canonical(identity)
    assert _canonical_strings(strings) == canonical(strings)
    assert _canonical_functioning(functioning) == canonical(
        [[f.domain, f.level] for f in functioning]
    )
