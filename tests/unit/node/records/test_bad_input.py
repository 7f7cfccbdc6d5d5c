"""Bad input, one case per rule (issue 16, item 7): the refusal, the field named, nothing changed.

Each case validates input the way every front door does (the pydantic models, then the
registry's checks against the child's birth) over both stores; the refusal must name the
field, must not quote the value, and must leave the child's record as it was.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from childreg.errors import InvalidInput, NotFound
from childreg.models import (
    AssessmentIn,
    CareSettingIn,
    ChildIn,
    PlacementIn,
    current_academic_year_start,
    parse,
)
from node.consent.breakglass import BreakGlassDesk
from node.consent.desk import ConsentDesk
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.store.base import RecordStore

BORN = dt.date(2015, 3, 14)
TODAY = dt.date.today()
NEXT = current_academic_year_start() + 1
FEDERATION = "test.childreg"


def _year(start: int) -> str:
    return f"{start}/{(start + 1) % 100:02d}"


CHILD: dict[str, Any] = {
    "child_id": "C1",
    "given_name": "Aysel",
    "family_name": "Məmmədova",
    "date_of_birth": BORN.isoformat(),
    "sex": "female",
    "district": "nasimi",
}
PLACEMENT: dict[str, Any] = {
    "child_id": "C1",
    "academic_year": "2023/24",
    "education_form": "inclusive_class",
    "institution": "School 6",
}
CARE: dict[str, Any] = {"child_id": "C1", "care_setting": "family", "since": "2016-01-01"}
ASSESSMENT: dict[str, Any] = {
    "child_id": "C1",
    "assessment_date": "2023-05-02",
    "commission": "Baku PMPC",
    "next_review": "2024-05-02",
}
CONSENT: dict[str, Any] = {
    "child_id": "C1",
    "guardian_name": "Leyla Məmmədova",
    "purpose": "iep_preparation",
    "school": f"spiffe://{FEDERATION}/school/school-6",
    "valid_from": TODAY.isoformat(),
    "valid_until": (TODAY + dt.timedelta(days=300)).isoformat(),
    "evidence_ref": "folder 12, form 31",
}


@pytest.fixture
def registry(store: RecordStore, keyring: Keyring) -> Registry:
    """A registry holding child C1 (born 2015-03-14) with one placement."""
    reg = Registry(store, keyring)
    reg.register_child(ChildIn.model_validate(CHILD))
    reg.record_placement(PlacementIn.model_validate(PLACEMENT))
    return reg


def _submit(registry: Registry, store: RecordStore, keyring: Keyring, kind: str, data: Any) -> None:
    """Validate ``data`` as a ``kind`` and hand it to the domain, as a front door would."""
    if kind == "child":
        registry.register_child(parse(ChildIn, data))
    elif kind == "placement":
        registry.record_placement(parse(PlacementIn, data))
    elif kind == "care":
        registry.record_care_setting(parse(CareSettingIn, data))
    elif kind == "assessment":
        registry.record_assessment(parse(AssessmentIn, data))
    elif kind == "consent":
        desk = ConsentDesk(store, keyring, FEDERATION)
        desk.grant(desk.parse(data), "spiffe://test.childreg/department-staff/alpha.clerk")
    elif kind == "breakglass":
        BreakGlassDesk(store, keyring, registry).read("C1", data, "clerk", "bg_1")
    else:  # pragma: no cover - a typo in a case
        raise AssertionError(kind)


def _later(days: int) -> str:
    return (TODAY + dt.timedelta(days=days)).isoformat()


DATE_RULES = [
    ("assessment before birth", "assessment", {"assessment_date": "2015-01-01",
                                               "next_review": None}, "assessment_date"),
    ("assessment in the future", "assessment", {"assessment_date": _later(3),
                                                "next_review": None}, "assessment_date"),
    ("next review not after", "assessment", {"next_review": "2023-05-02"}, "next_review"),
    ("next review over 5 years", "assessment", {"next_review": "2028-05-03"}, "next_review"),
    ("placement before age 2", "placement", {"academic_year": "2016/17"}, "academic_year"),
    ("placement after next year", "placement", {"academic_year": _year(NEXT + 1)}, "academic_year"),
    ("placement year 0000/01", "placement", {"academic_year": "0000/01"}, "academic_year"),
    ("placement year 9999/00", "placement", {"academic_year": "9999/00"}, "academic_year"),
    ("care before birth", "care", {"since": "2015-03-13"}, "since"),
    ("care in the future", "care", {"since": _later(3)}, "since"),
    ("consent starting over a year away", "consent", {"valid_from": _later(400),
                                                      "valid_until": _later(500)}, "valid_from"),
    ("consent ending when it starts", "consent", {"valid_until": TODAY.isoformat()}, "valid_until"),
    ("date-time, not a date", "assessment", {"assessment_date": "2023-05-02T00:00:00"},
     "assessment_date"),
    ("a number, not a date", "care", {"since": 1451606400}, "since"),
]  # fmt: skip
BASE = {"placement": PLACEMENT, "care": CARE, "assessment": ASSESSMENT, "consent": CONSENT}


@pytest.mark.parametrize("case", DATE_RULES, ids=[c[0] for c in DATE_RULES])
def test_dates_that_make_no_sense_are_refused(
    registry: Registry, store: RecordStore, keyring: Keyring, case: tuple[str, str, Any, str]
) -> None:
    """Each date rule refuses its case with InvalidInput naming the field; nothing changes."""
    _, kind, change, field = case
    before = registry.get_child("C1")
    with pytest.raises(InvalidInput) as caught:
        _submit(registry, store, keyring, kind, BASE[kind] | change)
    assert [v.field for v in caught.value.violations] == [field]
    assert registry.get_child("C1") == before
    assert store.consents_of("C1") == []


TEXT_RULES = [
    ("control character", "\x07"),
    ("line separator", "\u2028"),
    ("bidi override", "\u202e"),
    ("bidi isolate", "\u2066"),
    ("zero-width space", "\u200b"),
    ("zero-width joiner", "\u200d"),
    ("word joiner", "\u2060"),
    ("invisible operator", "\u2062"),
    ("byte-order mark", "\ufeff"),
    ("soft hyphen", "\u00ad"),
    ("tag character", "\U000e0041"),
]
TEXT_FIELDS = [
    ("child", CHILD | {"child_id": "C2"}, "given_name"),
    ("child", CHILD | {"child_id": "C2", "guardian_name": "Leyla"}, "guardian_name"),
    ("placement", PLACEMENT | {"academic_year": "2024/25"}, "institution"),
    ("assessment", ASSESSMENT, "commission"),
    ("consent", CONSENT, "evidence_ref"),
    ("consent", CONSENT, "guardian_name"),
    ("breakglass", None, "reason"),
]
REASON = "the child is in hospital and the doctors need the record now"


@pytest.mark.parametrize("rule", TEXT_RULES, ids=[r[0] for r in TEXT_RULES])
@pytest.mark.parametrize("target", TEXT_FIELDS, ids=[f[2] for f in TEXT_FIELDS])
def test_unsafe_characters_in_free_text_are_refused(
    registry: Registry,
    store: RecordStore,
    keyring: Keyring,
    rule: tuple[str, str],
    target: tuple[str, dict[str, Any] | None, str],
) -> None:
    """Control, bidi and invisible formatting characters in any free-text field are refused,
    the field named, the value not quoted, and nothing stored."""
    char = rule[1]
    kind, data, field = target
    text = f"Ay{char}sel Baku PMPC {REASON}"[:90]
    bad: Any = text if data is None else data | {field: text}
    before = registry.get_child("C1")
    with pytest.raises(InvalidInput) as caught:
        _submit(registry, store, keyring, kind, bad)
    assert [v.field for v in caught.value.violations] == [field]
    assert all(char not in v.problem and "Ay" not in v.problem for v in caught.value.violations)
    assert registry.get_child("C1") == before
    assert store.consents_of("C1") == []
    assert store.breakglass_of("C1") == []
    with pytest.raises(NotFound):
        registry.get_child("C2")


def test_text_is_kept_in_normal_form_c(registry: Registry) -> None:
    """A name typed with a combining accent is stored precomposed (NFC), so it equals the
    same name typed precomposed."""
    registry.register_child(parse(ChildIn, CHILD | {"child_id": "C3", "given_name": "Rene\u0301"}))
    assert registry.get_child("C3").child.given_name == "Ren\u00e9"
