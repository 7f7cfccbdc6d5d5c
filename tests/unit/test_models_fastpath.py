"""The validation fast paths decide exactly as full validation: same models, same errors.

The coded tuple fields of AssessmentIn skip per-entry validators for tuples of valid,
trimmed, distinct codes; ``_no_control`` and ``_academic_year`` skip their regexes for the
usual values; the converter hands known functioning items over as the shared models. Each
is compared here with a reference built the old way (the annotated types without the
shortcut, the old dict form of a protobuf record).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AfterValidator, Field, ValidationError

from childreg import codes
from childreg.errors import Violation
from childreg.models import (
    _LIST,
    Accommodation,
    AssessmentIn,
    Icd10Code,
    IcfCode,
    ImportRecord,
    Support,
    _academic_year,
    _no_control,
    _unique,
    violations_of,
)
from childreg.v1 import records_pb2 as pb
from node.convert import (
    _care_data,
    _child_data,
    _opt,
    _placement_data,
    import_record_from_proto,
    import_record_to_proto,
)
from tests.strategies import import_records

FIELDS = ("icf_codes", "diagnoses", "supports", "accommodations")


class OldAssessmentIn(AssessmentIn):
    """AssessmentIn with the coded tuple fields as they were, without the fast path."""

    icf_codes: Annotated[tuple[IcfCode, ...], AfterValidator(_unique), Field(max_length=_LIST)] = ()
    diagnoses: Annotated[
        tuple[Icd10Code, ...], AfterValidator(_unique), Field(max_length=_LIST)
    ] = ()
    supports: Annotated[tuple[Support, ...], AfterValidator(_unique), Field(max_length=_LIST)] = ()
    accommodations: Annotated[
        tuple[Accommodation, ...], AfterValidator(_unique), Field(max_length=_LIST)
    ] = ()


class Text(str):
    """A str subclass: never taken by a fast path."""


#: Codes with whitespace or control characters around them (some of which str.strip
#: removes and pydantic does not, or the other way round).
DECORATED = st.sampled_from(
    [" {}", "{} ", "{}\n", "\t{}\u00a0", "{}\x1f", "\x1c{}", "\u2028{}", "{}\u3000", "{}\x85"]
)


def _codes(valid: st.SearchStrategy[str], known: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Entries of a coded list: mostly valid, else untrimmed, invalid or of the wrong type."""
    return st.one_of(
        valid,
        valid,
        valid,
        st.sampled_from(known),
        st.builds(str.format, DECORATED, valid),
        st.builds(str.format, DECORATED, valid),
        valid.map(str.lower),
        valid.map(Text),
        st.text(max_size=8),
        st.sampled_from(["", " ", "d140.2 d140.3", "F84", "b1.1234", "speech", "D140.2"]),
        st.integers(-3, 3),
        st.none(),
        st.binary(max_size=4),
        valid.map(lambda c: [c]),  # unhashable
    )


ICF = _codes(st.from_regex(codes.ICF_CODE_RE), ("b122.2", "d350.3", "d140.2"))
ICD = _codes(st.from_regex(codes.ICD10_CODE_RE), ("F84.0", "G80.1", "Q90"))
SUPPORT = _codes(st.sampled_from(codes.SUPPORTS), codes.SUPPORTS[:3])
ACCOMMODATION = _codes(st.sampled_from(codes.ACCOMMODATIONS), codes.ACCOMMODATIONS[:3])


@st.composite
def coded_value(draw: st.DrawFn, entry: st.SearchStrategy[Any]) -> Any:
    """A value for a coded field: a tuple, list or other container, often with repeats."""
    entries: list[Any] = draw(st.lists(entry, max_size=_LIST + 3))
    repeat = draw(st.booleans())
    if entries and repeat:
        entries.append(draw(st.sampled_from(entries)))  # a repeat
    shape = draw(st.sampled_from(["tuple", "tuple", "tuple", "list", "str", "dict", "none"]))
    if shape == "list":
        return entries
    if shape == "str":
        return "d140.2"
    if shape == "dict":
        return {"0": "d140.2"}
    if shape == "none":
        return None
    return tuple(entries)


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Every detail of the errors (a ctx's exception as its type and text, to compare)."""
    out = []
    for err in exc.errors(include_url=False):
        ctx = {k: (type(v), str(v)) for k, v in err.get("ctx", {}).items()}
        out.append({**err, "ctx": ctx})
    return out


def _outcome(model: type[AssessmentIn], data: dict[str, Any]) -> Any:
    try:
        made = model.model_validate(data)
    except ValidationError as exc:
        return "error", _errors(exc), violations_of(exc)
    return "ok", {f: getattr(made, f) for f in type(made).model_fields}


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "icf_codes": coded_value(ICF),
            "diagnoses": coded_value(ICD),
            "supports": coded_value(SUPPORT),
            "accommodations": coded_value(ACCOMMODATION),
        },
    )
)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_coded_fields_fast_path_agrees_with_full_validation(fields: dict[str, Any]) -> None:
    data = {"child_id": "c1", "assessment_date": dt.date(2023, 9, 1), "commission": "PMPC"}
    data |= fields
    fast = _outcome(AssessmentIn, data)
    full = _outcome(OldAssessmentIn, data)
    assert fast == full
    if fast[0] == "ok":
        assert all(type(fast[1][f]) is tuple for f in FIELDS)
        assert all(type(c) is str for f in FIELDS for c in fast[1][f])


def test_usual_codes_take_the_fast_path_and_keep_their_value() -> None:
    data = {
        "child_id": "c1",
        "assessment_date": dt.date(2023, 9, 1),
        "commission": "PMPC",
        "icf_codes": ("b122.2", "d350.3"),
        "diagnoses": ("F84.0",),
        "supports": codes.SUPPORTS,  # every code of the list
        "accommodations": codes.ACCOMMODATIONS,
    }
    made = AssessmentIn.model_validate(data)
    assert all(getattr(made, f) is data[f] for f in FIELDS)  # returned as given
    assert made == AssessmentIn.model_validate({**data, "icf_codes": [" b122.2", "d350.3 "]})


def test_refusals_name_the_field_and_entry_as_before() -> None:
    data = {"child_id": "c1", "assessment_date": dt.date(2023, 9, 1), "commission": "PMPC"}
    bad = {
        "icf_codes": ("d140.2", "d140.2"),
        "diagnoses": ("F84.0", "nope"),
        "supports": ("braille",) * (_LIST + 1),
        "accommodations": ("extra_time\n",),
    }
    with_fast = _outcome(AssessmentIn, {**data, **bad})
    assert with_fast[0] == "error"
    assert [v.field for v in with_fast[2]] == ["icf_codes", "diagnoses.1", "supports"]
    assert with_fast == _outcome(OldAssessmentIn, {**data, **bad})


@given(st.sampled_from(FIELDS), st.data())
@settings(max_examples=300)
def test_every_known_code_decorated_decides_as_before(field: str, data: st.DataObject) -> None:
    known = {
        "icf_codes": ("b122.2", "d350.3", "e1+2", "s7"),
        "diagnoses": ("F84.0", "Q90", "G80.ABCD"),
        "supports": codes.SUPPORTS,
        "accommodations": codes.ACCOMMODATIONS,
    }[field]
    code = data.draw(st.sampled_from(known))
    decorated = data.draw(DECORATED).format(code)
    for value in ((decorated,), (code, decorated), (decorated, code), (decorated, decorated)):
        row = {"child_id": "c1", "assessment_date": dt.date(2023, 9, 1), "commission": "PMPC"}
        row[field] = value
        assert _outcome(AssessmentIn, row) == _outcome(OldAssessmentIn, row)


_OLD_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _decides(fn: Any, value: str) -> Any:
    try:
        return "ok", fn(value)
    except ValueError as exc:
        return "error", str(exc)


def _old_no_control(value: str) -> str:
    if _OLD_CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _old_academic_year(value: str) -> str:
    if not codes.is_valid_academic_year(value):
        raise ValueError("must look like 2023/24 (start year / next year's last two digits)")
    return value


@given(st.text(max_size=12) | st.sampled_from(["a\u2028b", "x\x85", "\u00a0y", "ok\u200b"]))
def test_no_control_decides_as_the_regex(value: str) -> None:
    assert _decides(_no_control, value) == _decides(_old_no_control, value)


YEARS = (st.integers(1985, 2105) | st.integers(0, 9999)).flatmap(
    lambda y: st.sampled_from(
        [f"{y:04d}/{(y + k) % 100:02d}" for k in (1, 1, 0, 2, -1)] + [f"{y}/{(y + 1) % 100}"]
    )
)


@given(
    YEARS
    | st.text(max_size=8)
    | st.sampled_from(["2023/24\n", " 2023/24", "\uff12\uff10\uff12\uff13/24"])
)
def test_academic_year_decides_as_the_full_check(value: str) -> None:
    assert _decides(_academic_year, value) == _decides(_old_academic_year, value)


def test_academic_years_around_the_usual_span_decide_as_before() -> None:
    for y in range(1900, 2200):
        for k in (-1, 0, 1, 2, 101):
            for value in (f"{y}/{(y + k) % 100:02d}", f"{y}/{(y + k) % 100}"):
                assert _decides(_academic_year, value) == _decides(_old_academic_year, value)


# ---- the converter: known functioning items as shared models, others as dicts ----


def _old_assessment_data(m: pb.Assessment) -> dict[str, Any]:
    """``node.convert._assessment_data`` as it was: every functioning item a dict."""
    return {
        "child_id": m.child_id,
        "assessment_date": m.assessment_date,
        "commission": m.commission,
        "impairment_band": _opt(m.impairment_band),
        "icf_codes": tuple(m.icf_codes),
        "diagnoses": tuple(m.diagnoses),
        "functioning": tuple({"domain": f.domain, "level": f.level} for f in m.functioning),
        "recommended_form": _opt(m.recommended_form),
        "supports": tuple(m.supports),
        "accommodations": tuple(m.accommodations),
        "next_review": _opt(m.next_review),
    }


def _old_import_record_from_proto(m: pb.ImportRecord) -> ImportRecord | list[Violation]:
    data: dict[str, Any] = {
        "line": m.line,
        "child": _child_data(m.child),
        "placement": _placement_data(m.placement),
        "care": _care_data(m.care) if m.HasField("care") else None,
        "assessment": _old_assessment_data(m.assessment) if m.HasField("assessment") else None,
    }
    try:
        return ImportRecord.model_validate(data)
    except ValidationError as exc:
        return violations_of(exc, line=m.line or None)


PAIR_CODE = st.sampled_from(
    [*codes.FUNCTIONING_DOMAINS[:4], "anxiety", "daily", "some_difficulty", "weekly"]
) | st.sampled_from([" seeing", "walking ", "bogus", "", "no_difficulty\t"])
KNOWN_PAIR = st.sampled_from(
    [
        (d, lv)
        for d in codes.FUNCTIONING_DOMAINS
        for lv in (
            codes.FREQUENCY_LEVELS if d in codes.FREQUENCY_DOMAINS else codes.DIFFICULTY_LEVELS
        )
    ]
)
PAIR = st.one_of(KNOWN_PAIR, KNOWN_PAIR, st.tuples(PAIR_CODE, PAIR_CODE))


@given(
    import_records(),
    st.none()
    | st.lists(PAIR, max_size=8)
    | st.lists(KNOWN_PAIR | PAIR, min_size=_LIST - 1, max_size=_LIST + 2),
    st.fixed_dictionaries(
        {},
        optional={
            "icf_codes": st.lists(ICF.filter(lambda c: type(c) is str), max_size=_LIST + 1),
            "diagnoses": st.lists(ICD.filter(lambda c: type(c) is str), max_size=4),
            "supports": st.lists(SUPPORT.filter(lambda c: type(c) is str), max_size=4),
        },
    ),
)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_converter_agrees_with_the_old_dict_form(
    record: ImportRecord, pairs: list[tuple[str, str]] | None, coded: dict[str, list[str]]
) -> None:
    m = import_record_to_proto(record)
    if pairs is not None or coded:
        a = m.assessment  # made (empty) when the record has none
        if pairs is not None:
            del a.functioning[:]
            a.functioning.extend(pb.Functioning(domain=d, level=lv) for d, lv in pairs)
        for name, entries in coded.items():
            field = getattr(a, name)
            del field[:]
            field.extend(entries)
    assert import_record_from_proto(m) == _old_import_record_from_proto(m)


@given(st.lists(st.sampled_from([0, 1, 2]), min_size=1, max_size=8))
def test_mixed_profiles_give_the_errors_of_the_all_dict_form(kinds: list[int]) -> None:
    """Known items beside unknown ones: full validation, errors exactly as before."""
    entries = [
        ("seeing", "no_difficulty"),  # known
        ("hearing", "daily"),  # a frequency level for a difficulty domain
        ("flying", "some_difficulty"),  # no such domain
    ]
    m = pb.ImportRecord(
        line=7,
        child=pb.Child(
            child_id="c1",
            given_name="A",
            family_name="B",
            date_of_birth="2015-01-02",
            sex="female",
            district=codes.DISTRICTS[0],
        ),
        placement=pb.Placement(
            child_id="c1", academic_year="2023/24", education_form=codes.EDUCATION_FORMS[0]
        ),
        assessment=pb.Assessment(
            child_id="c1",
            assessment_date="2023-09-01",
            commission="PMPC",
            functioning=[pb.Functioning(domain=entries[k][0], level=entries[k][1]) for k in kinds],
        ),
    )
    got = import_record_from_proto(m)
    assert got == _old_import_record_from_proto(m)
    if any(k != 0 for k in kinds):  # each unknown entry is named by its place in the list
        assert isinstance(got, list)
        named = [v.field.split(".")[2] for v in got]
        assert named == [str(i) for i, k in enumerate(kinds) if k != 0]
