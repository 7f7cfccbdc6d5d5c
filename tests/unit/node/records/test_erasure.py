"""Erasing a child through the Registry (node/records/erasure.py), on both stores.

An erased child's sealed fields open with no key the node holds; every read, change,
consent and emergency access answers Erased; searches and count tables leave it out; its
id is never taken again; the erasure says what it removed, for the guardian's receipt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest

from childreg.errors import AlreadyExists, Erased, ImportRejected, InvalidInput, NotFound
from childreg.history import Closure, Correction, ErasureIn
from childreg.models import AssessmentIn, ImportRecord, PlacementIn, parse
from childreg.search import SearchQuery
from node.audit.actor import Actor, acting_as
from node.consent.breakglass import BreakGlassDesk
from node.consent.desk import ConsentDesk
from node.consent.receipts import KEPT, DepartmentReceipts
from node.crypto.keys import Keyring
from node.records.erasure import ERASED_MESSAGE, Erasure
from node.records.registry import IDENTITY_CONTEXT, Registry, assessment_context
from node.store.base import RecordStore, StoredErasure
from tests.unit.node.records.children import a_child

STAFF = Actor.staff("baku", "aysel")
YEAR = "2023/24"
FEDERATION = "test.childreg"
NOW = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def registry(store: RecordStore, keyring: Keyring) -> Registry:
    """A registry over each store with two placed children, C1 (assessed) and C2."""
    made = Registry(store, keyring)
    made.register_child(a_child("C1"))
    made.register_child(a_child("C2", given_name="Nigar", date_of_birth=dt.date(2016, 1, 9)))
    for cid in ("C1", "C2"):
        made.record_placement(
            PlacementIn(child_id=cid, academic_year=YEAR, education_form="inclusive_class")
        )
    made.record_assessment(
        AssessmentIn(
            child_id="C1",
            assessment_date=dt.date(2023, 5, 2),
            commission="PMPC 1",
            diagnoses=("F84.0",),
        )
    )
    return made


def erase(registry: Registry, child_id: str = "C1") -> Erasure:
    """Erase a child as department staff, at the guardian's request."""
    with acting_as(STAFF):
        return registry.erase_child(ErasureIn(child_id=child_id, reason="guardian_request"))


def every_key(keyring: Keyring, others: list[bytes]) -> list[bytes]:
    """Every 32-byte key the node holds: the KEK, the keyring's keys and what is derived
    from them, and the data keys of the children still held."""
    kek = keyring._kek._key  # the test tries the KEK itself
    derived = [
        keyring.db_key,
        keyring._lookup_key,
        keyring.noise_secret(),
        keyring.audit_signing_seed(),
        keyring.extract_signing_seed(),
        keyring.upload_signing_seed(),
        keyring.search_index_key(),
        bytes(keyring.masking_key()),
    ]
    return [kek, *derived, *others]


def test_sealed_fields_read_before_erasure_open_with_no_key_held(
    registry: Registry, store: RecordStore, keyring: Keyring
) -> None:
    """The identity and an assessment field sealed before the erasure open with no key the
    node holds afterwards, though they opened with the child's key before."""
    before = store.get_child("C1")
    assert before is not None
    sealed_identity = before.sealed_identity
    sealed_diagnoses = store.assessments("C1")[0].sealed_fields["diagnoses"]
    old_key = keyring.child_key("C1", before.key_version, before.wrapped_key)
    assert keyring.unseal(old_key, "C1", IDENTITY_CONTEXT, sealed_identity)
    erase(registry)
    held = [store.get_child(cid) for cid in store.child_ids()]
    others = [keyring.child_key(c.child_id, c.key_version, c.wrapped_key) for c in held if c]
    blobs = (
        (IDENTITY_CONTEXT, sealed_identity),
        (assessment_context(1, "diagnoses"), sealed_diagnoses),
    )
    for key in every_key(keyring, others):
        for context, blob in blobs:
            with pytest.raises(Exception, match="does not open"):
                keyring.unseal(key, "C1", context, blob)
    assert store.get_child("C1") is None  # the wrapped key went with the row


def test_every_read_and_change_answers_erased(
    registry: Registry, store: RecordStore, keyring: Keyring
) -> None:
    """After the erasure, reads, changes, consents and emergency accesses say "erased"."""
    erase(registry)
    desk = ConsentDesk(store, keyring, FEDERATION, clock=lambda: NOW)
    glass = BreakGlassDesk(store, keyring, registry)
    calls: list[Callable[[], object]] = [
        lambda: registry.get_child("C1"),
        lambda: registry.history("C1"),
        lambda: registry.correct_child(
            Correction(child_id="C1", reason="a typo", given_name="Ayla")
        ),
        lambda: registry.close_child(
            Closure(child_id="C1", closed_on=dt.date(2024, 6, 1), reason="aged_out")
        ),
        lambda: registry.record_placement(
            PlacementIn(child_id="C1", academic_year=YEAR, education_form="special_school")
        ),
        lambda: desk.list("C1"),
        lambda: glass.read("C1", "the child is missing and the police ask", "staff", "bg1"),
        lambda: erase(registry),
    ]
    for call in calls:
        with pytest.raises(Erased, match="erased") as caught:
            call()
        assert str(caught.value) == ERASED_MESSAGE
    with pytest.raises(NotFound) as unknown:
        registry.get_child("C9")
    assert not isinstance(unknown.value, Erased)


def test_searches_and_counts_leave_the_child_out(registry: Registry, store: RecordStore) -> None:
    """A search by name finds only the other child; count tables count one child."""
    assert len(registry.find_children(SearchQuery(name="Məmmədova")).hits) == 2
    erase(registry)
    hits = registry.find_children(SearchQuery(name="Məmmədova", include_closed=True)).hits
    assert [h.child_id for h in hits] == ["C2"]
    counts = store.count_table(YEAR, dt.date(2023, 9, 15), ["sex"])
    assert counts == {("female",): 1}


def test_an_erased_id_is_never_taken_again(registry: Registry) -> None:
    """Registering or importing a child under an erased child's id is refused."""
    erase(registry)
    with pytest.raises(AlreadyExists, match="erased"):
        registry.register_child(a_child("C1"), not_duplicate_reason="a new child")
    row = ImportRecord(
        line=2,
        child=a_child("C1", national_id=None),
        placement=PlacementIn(child_id="C1", academic_year=YEAR, education_form="preschool"),
    )
    with pytest.raises(ImportRejected) as caught:
        registry.import_records([row])
    assert [(v.field, v.line) for v in caught.value.violations] == [("child_id", 2)]


def test_the_erasure_says_what_it_removed(
    registry: Registry, store: RecordStore, keyring: Keyring
) -> None:
    """The erasure names the pseudonym, actor and reason, counts what went, and keeps the
    tombstone; its receipt says what stays and holds no sealed value."""
    erasure = erase(registry)
    assert erasure.pseudonym == keyring.pseudonym("C1").hex()
    assert erasure.actor == STAFF.name
    assert erasure.guardian == "Leyla Məmmədova"
    assert erasure.erased == {
        "identity": 1,
        "placements": 1,
        "care_settings": 0,
        "assessments": 1,
        "history_steps": 3,
        "consents": 0,
        "emergency_accesses": 0,
    }
    (tombstone,) = store.erased_children()
    assert (tombstone.pseudonym, tombstone.actor, tombstone.reason) == (
        keyring.pseudonym("C1"),
        STAFF.name,
        "guardian_request",
    )
    receipt = DepartmentReceipts("").erasure(erasure, "")
    data = receipt.data
    assert data["pseudonym"] == tombstone.pseudonym.hex()
    assert any("access log" in k for k in KEPT)
    assert data["kept"] == list(KEPT)
    page = receipt.html
    assert tombstone.pseudonym.hex() in page
    assert "F84.0" not in page
    assert "F84.0" not in receipt.json()


def test_a_bad_reason_is_refused_naming_the_field(registry: Registry) -> None:
    """An erasure with a reason outside the codes is InvalidInput naming ``reason``."""
    with pytest.raises(InvalidInput) as caught:
        parse(ErasureIn, {"child_id": "C1", "reason": "because"}, what="erasure")
    assert [v.field for v in caught.value.violations] == ["reason"]
    assert registry.get_child("C1").child.child_id == "C1"


def test_a_record_whose_key_does_not_open_is_erased_all_the_same(
    registry: Registry, store: RecordStore
) -> None:
    """A damaged row (its wrapped key replaced) is erased; the receipt has no guardian."""
    held = store.get_child("C1")
    assert held is not None
    store.replace_child(dataclasses.replace(held, wrapped_key=bytes(len(held.wrapped_key))))
    erasure = erase(registry)
    assert erasure.guardian is None
    assert store.get_child("C1") is None


def test_an_erasure_just_before_an_import_starts_is_not_undone_by_it(
    registry: Registry, store: RecordStore, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import of the child's id whose transaction starts right after the child's erasure
    committed is refused (the erased ids are read inside the import's transaction)."""
    atomic = store.atomic
    raced: list[bool] = []

    def erasure_commits_first() -> contextlib.AbstractContextManager[None]:
        if not raced:  # the import's own transaction: the erasure wins the race to the lock
            raced.append(True)
            with atomic():
                store.erase_child("C1", StoredErasure(keyring.pseudonym("C1"), "t", "s", "r"))
        return atomic()

    monkeypatch.setattr(store, "atomic", erasure_commits_first)
    row = ImportRecord(
        line=2,
        child=a_child("C1", national_id=None),
        placement=PlacementIn(child_id="C1", academic_year=YEAR, education_form="preschool"),
    )
    with pytest.raises(ImportRejected) as caught:
        registry.import_records([row])
    assert raced
    assert [(v.field, v.line) for v in caught.value.violations] == [("child_id", 2)]
    assert store.get_child("C1") is None


def test_the_receipt_tells_the_guardian_what_erasure_does_not_reach(registry: Registry) -> None:
    """The receipt lists the backups made before the erasure and the extracts schools
    already received among what stays, and does not promise that no backup opens."""
    data = DepartmentReceipts("").erasure(erase(registry), "").data
    kept = " ".join(str(k) for k in data["kept"])
    assert "backup" in kept
    assert "extract" in kept
    assert "even from a backup" not in str(data["how"])
