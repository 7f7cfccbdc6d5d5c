"""Hypothesis strategies for valid records (shared by round-trip and property tests)."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

from childreg import codes
from childreg.models import (
    AssessmentIn,
    CareSettingIn,
    ChildIn,
    FunctioningItem,
    ImportRecord,
    PlacementIn,
    current_academic_year_start,
)

child_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,20}\Z")
names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=30,
)
#: Births early enough that every record date and placement year below is after them.
birth_dates = st.dates(min_value=dt.date(1995, 1, 1), max_value=dt.date(2012, 12, 31))
dates = st.dates(min_value=dt.date(2013, 1, 1), max_value=dt.date(2024, 12, 31))
years = st.integers(2015, current_academic_year_start() + 1).map(
    lambda y: f"{y}/{(y + 1) % 100:02d}"
)


def children(child_id: st.SearchStrategy[str] = child_ids) -> st.SearchStrategy[ChildIn]:
    """Valid children."""
    return st.builds(
        ChildIn,
        child_id=child_id,
        national_id=st.none() | st.from_regex(r"\A[A-Z0-9]{5,20}\Z"),
        given_name=names,
        family_name=names,
        date_of_birth=birth_dates,
        sex=st.sampled_from(codes.SEXES),
        district=st.sampled_from(codes.districts()),
        guardian_name=st.none() | names,
        guardian_phone=st.none() | st.from_regex(r"\A\+?[0-9]{5,15}\Z"),
    )


def placements(child_id: str) -> st.SearchStrategy[PlacementIn]:
    """Valid placements of one child."""
    return st.builds(
        PlacementIn,
        child_id=st.just(child_id),
        academic_year=years,
        education_form=st.sampled_from(codes.EDUCATION_FORMS),
        institution=st.none() | names,
    )


def care_settings(child_id: str) -> st.SearchStrategy[CareSettingIn]:
    """Valid care settings of one child."""
    return st.builds(
        CareSettingIn,
        child_id=st.just(child_id),
        care_setting=st.sampled_from(codes.CARE_SETTINGS),
        since=dates,
    )


@st.composite
def functioning(draw: st.DrawFn) -> tuple[FunctioningItem, ...]:
    """A functioning profile naming each domain at most once, with a level that fits."""
    domains = draw(st.lists(st.sampled_from(codes.FUNCTIONING_DOMAINS), unique=True, max_size=6))
    items = []
    for d in domains:
        levels = codes.FREQUENCY_LEVELS if d in codes.FREQUENCY_DOMAINS else codes.DIFFICULTY_LEVELS
        items.append(FunctioningItem(domain=d, level=draw(st.sampled_from(levels))))
    return tuple(items)


@st.composite
def assessments(draw: st.DrawFn, child_id: str) -> AssessmentIn:
    """Valid assessments of one child."""
    when = draw(dates)
    return AssessmentIn(
        child_id=child_id,
        assessment_date=when,
        commission=draw(names),
        impairment_band=draw(st.none() | st.sampled_from(codes.IMPAIRMENT_BANDS)),
        icf_codes=tuple(
            draw(st.lists(st.from_regex(r"\A[bsde][0-9]{1,5}\.[0-9]\Z"), unique=True, max_size=4))
        ),
        diagnoses=tuple(
            draw(st.lists(st.from_regex(r"\A[A-Z][0-9]{2}\.[0-9]\Z"), unique=True, max_size=3))
        ),
        functioning=draw(functioning()),
        recommended_form=draw(st.none() | st.sampled_from(codes.EDUCATION_FORMS)),
        supports=tuple(draw(st.lists(st.sampled_from(codes.SUPPORTS), unique=True, max_size=3))),
        accommodations=tuple(
            draw(st.lists(st.sampled_from(codes.ACCOMMODATIONS), unique=True, max_size=3))
        ),
        next_review=draw(st.none() | st.just(when + dt.timedelta(days=365))),
    )


@st.composite
def import_records(draw: st.DrawFn, line: int | None = None) -> ImportRecord:
    """Valid import records."""
    child = draw(children())
    cid = child.child_id
    return ImportRecord(
        line=line if line is not None else draw(st.integers(2, 10**6)),
        child=child,
        placement=draw(placements(cid)),
        care=draw(st.none() | care_settings(cid)),
        assessment=draw(st.none() | assessments(cid)),
    )
