"""The functioning fast path (shared items for known codes) decides exactly as full validation."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from childreg import codes
from childreg.models import AssessmentIn, FunctioningItem, known_functioning

FULL = TypeAdapter(tuple[FunctioningItem, ...])
LEVELS = codes.DIFFICULTY_LEVELS + codes.FREQUENCY_LEVELS
PAIRS = [
    (d, lv)
    for d in codes.FUNCTIONING_DOMAINS
    for lv in (codes.FREQUENCY_LEVELS if d in codes.FREQUENCY_DOMAINS else codes.DIFFICULTY_LEVELS)
]
CODE = st.sampled_from(codes.FUNCTIONING_DOMAINS + LEVELS + (" seeing", "walking ", "bogus", ""))
GOOD = st.sampled_from(PAIRS).map(lambda p: {"domain": p[0], "level": p[1]})
ENTRY = st.one_of(
    GOOD,
    GOOD,
    GOOD,
    st.fixed_dictionaries({"domain": CODE, "level": CODE}),
    GOOD.map(lambda e: {**e, "extra": "x"}),
    GOOD.map(lambda e: {"domain": e["domain"]}),
    GOOD.map(lambda e: {"domain": [e["domain"]], "level": e["level"]}),  # unhashable
    GOOD.map(lambda e: (e["domain"], e["level"])),
    GOOD.map(lambda e: FunctioningItem(**e)),
)


def _outcome(fn: Any, value: Any) -> Any:
    try:
        return ("ok", fn(value))
    except ValidationError as exc:
        return ("error", [(e["loc"], e["msg"]) for e in exc.errors()])


def _via_assessment(value: Any) -> Any:
    return AssessmentIn(
        child_id="c1", assessment_date=dt.date(2023, 9, 1), commission="PMPC", functioning=value
    ).functioning


@given(st.lists(ENTRY, max_size=35), st.booleans())
def test_fast_path_agrees_with_full_validation(entries: list[Any], as_list: bool) -> None:
    value = entries if as_list else tuple(entries)
    full = _outcome(FULL.validate_python, value)
    fast = _outcome(_via_assessment, value)
    if full[0] == "error":
        assert fast[0] == "error"
        assert [(("functioning", *loc), msg) for loc, msg in full[1]] == fast[1]
    elif len({f.domain for f in full[1]}) == len(full[1]):
        assert fast == full


def test_known_pairs_are_shared_and_unknown_ones_are_not() -> None:
    item = known_functioning("walking", "some_difficulty")
    assert item == FunctioningItem(domain="walking", level="some_difficulty")
    assert item is known_functioning("walking", "some_difficulty")
    assert known_functioning("walking", "weekly") is None  # a frequency level for a difficulty
    assert known_functioning("anxiety", "daily") is not None
    assert known_functioning(["walking"], "daily") is None
