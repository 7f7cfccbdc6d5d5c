"""A record's life through the Registry, on both stores: history, correction, closing.

Every step is kept with who, when and why, sealed like the record; a correction says why
and changes only what it names; changing a recorded placement or care setting needs a
reason; a closed record takes no more changes, leaves search unless asked for, and is
counted only in snapshots before its closing date.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from childreg import codes
from childreg.errors import FailedPrecondition, InvalidInput, KeyProblem
from childreg.history import Closure, Correction
from childreg.models import AssessmentIn, CareSettingIn, ImportRecord, PlacementIn
from childreg.search import SearchQuery
from node.audit.actor import UNATTRIBUTED, Actor, acting_as
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.store.base import RecordStore, StoredEvent
from node.store.memory import MemoryStore
from tests.unit.node.records.children import a_child

STAFF = Actor.staff("baku", "aysel")
YEAR = "2023/24"


@pytest.fixture
def registry(store: RecordStore, keyring: Keyring) -> Registry:
    """A registry over each store."""
    return Registry(store, keyring)


def placed(child_id: str = "C1", form: str = "inclusive_class", year: str = YEAR) -> PlacementIn:
    """A placement of the child."""
    return PlacementIn(child_id=child_id, academic_year=year, education_form=form)


def changes_of(entry: Any) -> dict[str, tuple[str | None, str | None]]:
    """A history entry's changes as field -> (before, after)."""
    return {c.field: (c.before, c.after) for c in entry.changes}


def test_every_step_is_in_the_history_with_who_and_why(registry: Registry) -> None:
    """Register, correct, place, care, assess, close: one entry each, the actor of the
    action, the reason given, and each field's value before and after."""
    with acting_as(STAFF):
        registry.register_child(a_child())
        registry.correct_child(
            Correction(
                child_id="C1", reason="spelling on the birth certificate", given_name="Ayselə"
            )
        )
        registry.record_placement(placed())
        registry.record_care_setting(
            CareSettingIn(child_id="C1", care_setting="family", since=dt.date(2016, 1, 1))
        )
        registry.record_assessment(
            AssessmentIn(child_id="C1", assessment_date=dt.date(2023, 5, 2), commission="PMPC 1")
        )
        registry.close_child(
            Closure(child_id="C1", closed_on=dt.date(2024, 6, 1), reason="aged_out")
        )
    history = registry.history("C1")
    kinds = [e.kind for e in history.entries]
    assert kinds == ["registered", "corrected", "placed", "care_setting", "assessed", "closed"]
    assert {e.actor for e in history.entries} == {STAFF.name}
    assert [e.seq for e in history.entries] == [1, 2, 3, 4, 5, 6]
    registered, corrected, place, care, assessed, closed = history.entries
    assert changes_of(registered)["given_name"] == (None, "Aysel")
    assert changes_of(registered)["date_of_birth"] == (None, "2015-03-14")
    assert changes_of(corrected) == {"given_name": ("Aysel", "Ayselə")}
    assert corrected.reason == "spelling on the birth certificate"
    assert (place.scope, changes_of(place)["education_form"]) == (YEAR, (None, "inclusive_class"))
    assert (care.scope, changes_of(care)) == ("2016-01-01", {"care_setting": (None, "family")})
    assert assessed.scope == "1"
    assert changes_of(closed) == {
        "closed_on": (None, "2024-06-01"),
        "close_reason": (None, "aged_out"),
    }
    assert (history.closed_on, history.close_reason) == (dt.date(2024, 6, 1), "aged_out")


def test_a_change_outside_the_audited_service_is_unattributed(registry: Registry) -> None:
    """Without an acting actor, the history says so rather than naming anyone."""
    registry.register_child(a_child())
    assert registry.history("C1").entries[0].actor == UNATTRIBUTED


def test_history_is_sealed_at_rest(registry: Registry, store: RecordStore) -> None:
    """No name or reason appears in the stored events; only who, when and the kind."""
    registry.register_child(a_child())
    registry.correct_child(Correction(child_id="C1", reason="Mother's request", given_name="Leyla"))
    raw = b"".join(e.sealed or b"" for e in store.events("C1"))
    nid = a_child().national_id
    assert nid is not None
    for secret in ("Aysel", "Leyla", "Məmmədova", "Mother", nid):
        assert secret.encode() not in raw
    assert [e.kind for e in store.events("C1")] == ["registered", "corrected"]


def test_a_correction_changes_only_what_it_names(registry: Registry) -> None:
    """Fields not named stay; a cleared field becomes not given; search follows."""
    registry.register_child(a_child(guardian_name="Leyla Məmmədova"))
    registry.correct_child(
        Correction(child_id="C1", reason="typo", family_name="Kərimova", clear=("guardian_name",))
    )
    child = registry.get_child("C1").child
    assert (child.given_name, child.family_name, child.guardian_name) == ("Aysel", "Kərimova", None)
    assert child.national_id == a_child().national_id
    assert [h.child_id for h in registry.find_children(SearchQuery(name="Kərimova")).hits] == ["C1"]


@pytest.mark.parametrize(
    ("correction", "field"),
    [
        ({"given_name": "Aysel"}, "record"),  # the value already recorded
        ({"date_of_birth": dt.date.today() + dt.timedelta(days=2)}, "date_of_birth"),
        ({"date_of_birth": dt.date(2022, 1, 1)}, "date_of_birth"),  # after the placement
    ],
)
def test_a_bad_correction_changes_nothing(
    registry: Registry, correction: dict[str, Any], field: str
) -> None:
    """A correction that would change nothing, or make the record invalid, is refused
    naming the field, and the record and history stay as they were."""
    registry.register_child(a_child())
    registry.record_placement(placed())
    before = (registry.get_child("C1"), registry.history("C1"))
    with pytest.raises(InvalidInput) as caught:
        registry.correct_child(Correction(child_id="C1", reason="typo", **correction))
    assert field in [v.field for v in caught.value.violations]
    assert (registry.get_child("C1"), registry.history("C1")) == before


def test_a_correction_needs_a_reason() -> None:
    """A correction without a reason, or naming no field, is invalid."""
    with pytest.raises(ValueError, match="reason"):
        Correction(child_id="C1", given_name="X")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="at least one field"):
        Correction(child_id="C1", reason="typo")


def test_changing_a_recorded_placement_or_care_setting_needs_a_reason(registry: Registry) -> None:
    """Re-recording the same placement changes nothing; another form needs a reason and
    keeps the old value in the history."""
    registry.register_child(a_child())
    registry.record_placement(placed())
    registry.record_placement(placed())  # the same again: nothing written
    with pytest.raises(InvalidInput) as caught:
        registry.record_placement(placed(form="special_school"))
    assert [v.field for v in caught.value.violations] == ["reason"]
    registry.record_placement(placed(form="special_school"), reason="commission's decision")
    care = CareSettingIn(child_id="C1", care_setting="family", since=dt.date(2016, 1, 1))
    registry.record_care_setting(care)
    with pytest.raises(InvalidInput):
        registry.record_care_setting(care.model_copy(update={"care_setting": "foster_family"}))
    entries = registry.history("C1").entries
    assert [e.kind for e in entries] == ["registered", "placed", "placed", "care_setting"]
    assert changes_of(entries[2])["education_form"] == ("inclusive_class", "special_school")
    assert entries[2].reason == "commission's decision"


def test_a_closed_record_takes_no_more_changes(registry: Registry) -> None:
    """After closing, corrections, placements, care settings, assessments and a second
    closing are refused, and the record stays readable."""
    registry.register_child(a_child())
    registry.close_child(
        Closure(child_id="C1", closed_on=dt.date(2024, 6, 1), reason="moved_abroad")
    )
    refused: list[Callable[[], object]] = [
        lambda: registry.correct_child(Correction(child_id="C1", reason="typo", given_name="X")),
        lambda: registry.record_placement(placed()),
        lambda: registry.record_care_setting(
            CareSettingIn(child_id="C1", care_setting="family", since=dt.date(2016, 1, 1))
        ),
        lambda: registry.record_assessment(
            AssessmentIn(child_id="C1", assessment_date=dt.date(2023, 5, 2), commission="P")
        ),
        lambda: registry.close_child(
            Closure(child_id="C1", closed_on=dt.date(2024, 7, 1), reason="aged_out")
        ),
    ]
    for call in refused:
        with pytest.raises(FailedPrecondition, match="closed"):
            call()
    view = registry.get_child("C1")
    assert (view.closed_on, view.close_reason) == (dt.date(2024, 6, 1), "moved_abroad")
    assert len(registry.history("C1").entries) == 2


def test_closing_checks_its_date() -> None:
    """A closing in the future, or "other" without a note, is invalid."""
    with pytest.raises(ValueError, match="future"):
        Closure(child_id="C1", closed_on=dt.date.today() + dt.timedelta(days=1), reason="aged_out")
    with pytest.raises(ValueError, match="note"):
        Closure(child_id="C1", closed_on=dt.date(2024, 6, 1), reason="other")


def test_closing_before_birth_is_refused(registry: Registry) -> None:
    """A closing date before the child's birth is refused naming closed_on."""
    registry.register_child(a_child())
    with pytest.raises(InvalidInput) as caught:
        registry.close_child(
            Closure(child_id="C1", closed_on=dt.date(2010, 1, 1), reason="aged_out")
        )
    assert [v.field for v in caught.value.violations] == ["closed_on"]
    assert registry.get_child("C1").closed_on is None


def test_a_closed_record_leaves_search_unless_asked_for(registry: Registry) -> None:
    """Search finds a closed record only with include_closed, marked closed; the duplicate
    warning shows it too, marked closed."""
    registry.register_child(a_child())
    registry.close_child(Closure(child_id="C1", closed_on=dt.date(2024, 6, 1), reason="aged_out"))
    assert registry.find_children(SearchQuery(name="Aysel")).hits == ()
    (hit,) = registry.find_children(SearchQuery(name="Aysel", include_closed=True)).hits
    assert (hit.child_id, hit.closed) == ("C1", True)
    (candidate,) = registry.likely_duplicates(a_child("C2", national_id=None))
    assert (candidate.hit.child_id, candidate.hit.closed) == ("C1", True)


def test_snapshots_count_a_closed_child_only_before_the_closing(
    registry: Registry, store: RecordStore
) -> None:
    """A snapshot whose reference date falls before the closing counts the child; one
    after it does not."""
    registry.register_child(a_child())
    registry.record_placement(placed(year="2023/24"))
    registry.record_placement(placed(year="2024/25"))
    registry.close_child(
        Closure(child_id="C1", closed_on=dt.date(2024, 6, 1), reason="moved_abroad")
    )
    counts = {
        year: store.count_table(year, codes.reference_date(year), ["education_form"])
        for year in ("2023/24", "2024/25")
    }
    assert counts == {"2023/24": {("inclusive_class",): 1}, "2024/25": {}}


def test_an_imported_childs_history_starts_with_its_first_version(registry: Registry) -> None:
    """An imported child has an "imported" entry whose values are the record as imported,
    even after a later correction."""
    record = ImportRecord(line=2, child=a_child(), placement=placed())
    with acting_as(STAFF):
        registry.import_records([record])
        registry.correct_child(Correction(child_id="C1", reason="typo", family_name="Kərimova"))
    imported, corrected = registry.history("C1").entries
    assert (imported.kind, imported.actor) == ("imported", STAFF.name)
    assert changes_of(imported)["family_name"] == (None, "Məmmədova")
    assert changes_of(corrected) == {"family_name": ("Məmmədova", "Kərimova")}


@pytest.mark.parametrize("column", ["kind", "actor", "at", "sealed"])
def test_a_relabelled_step_no_longer_opens(
    registry: Registry, store: RecordStore, keyring: Keyring, column: str
) -> None:
    """A step whose kind, actor or time is changed in the store, or whose details are
    dropped, makes the history refuse to open rather than tell another story."""
    registry.register_child(a_child())
    registry.correct_child(Correction(child_id="C1", reason="typo", given_name="Leyla"))
    step = store.events("C1")[1]
    forged = {
        "kind": dataclasses.replace(step, kind="imported"),
        "actor": dataclasses.replace(step, actor="department-staff/baku.someone"),
        "at": dataclasses.replace(step, at="2020-01-01T00:00:00Z"),
        "sealed": dataclasses.replace(step, sealed=None),
    }[column]
    other = Registry(_store_with(store, forged), keyring)
    with pytest.raises(KeyProblem):
        other.history("C1")


def _store_with(store: RecordStore, forged: StoredEvent) -> RecordStore:
    """A memory copy of ``store``'s child C1 whose second history step is ``forged``."""
    copy = MemoryStore()
    copy.insert_child(store.get_child("C1") or pytest.fail("no child"))
    for event in store.events("C1"):
        copy.add_event(forged if event.seq == forged.seq else event)
    return copy
