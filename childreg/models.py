"""Validated models of everything a person types or a file brings in.

Every input crosses one of these pydantic models before any domain code sees it. Errors
become :class:`~childreg.errors.Violation` lists naming the field and the problem, never
the offending value (it may be personal data).

Validation has one path: a bulk import's rows go through the same models as a single
registration, so every decision and every message is the same whichever door a record
came through.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from childreg import codes
from childreg.errors import InvalidInput, Violation

EARLIEST_BIRTH = dt.date(1990, 1, 1)
#: The longest a commission may set the next review after its assessment.
MAX_REVIEW_YEARS = 5
#: A child is placed in education from the academic year starting in the year it turns 2.
FIRST_PLACEMENT_AGE = 2
#: The academic year starts on 1 September: before it, the current year is last year's.
ACADEMIC_YEAR_START = (9, 1)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
#: Bidirectional embeddings, overrides and isolates (Trojan Source: CVE-2021-42574).
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _iso_date(value: object) -> object:
    """Dates only, written strictly as YYYY-MM-DD (pydantic's lax mode would also take a
    date-time at midnight, a Unix timestamp, or bytes)."""
    if isinstance(value, dt.datetime):
        raise ValueError("must be a date (YYYY-MM-DD), not a date and time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("not a valid calendar date") from None
    raise ValueError("must be a date written YYYY-MM-DD")


#: Every date field of every input: a calendar date, never a date-time.
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]


def _nfc(value: str) -> str:
    """Text is kept in Unicode normalisation form C (so equal names are equal strings)."""
    return unicodedata.normalize("NFC", value)


def text_problem(value: str, *, newlines: bool = False) -> str | None:
    """Why ``value`` is not acceptable free text, or None; never quotes the value.

    In the spirit of Unicode TS #39 (security mechanisms): no control characters (Cc,
    line and paragraph separators; ``newlines`` allows LF), no bidirectional overrides
    or isolates, and no invisible formatting characters (every other Cf: zero-width
    spaces and joiners, word joiner, invisible operators, BOM, soft hyphen, tags), nor
    lone surrogates. Every such character is unprintable, so a printable string (the
    usual case, a C-level test) passes at once.
    """
    if value.isprintable():
        return None
    for ch in value:
        category = unicodedata.category(ch)
        if ch in _BIDI:
            return "must not contain bidirectional override or isolate characters"
        if category == "Cf":
            return "must not contain invisible formatting characters"
        if category in ("Cc", "Zl", "Zp", "Cs") and not (newlines and ch == "\n"):
            return "must not contain control characters"
    return None


def _plain_text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def years_after(day: dt.date, years: int) -> dt.date:
    """The same calendar day ``years`` later (28 February for a 29 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def current_academic_year_start(today: dt.date | None = None) -> int:
    """The start year of the academic year in course (it starts on 1 September)."""
    today = today or dt.date.today()
    return today.year if (today.month, today.day) >= ACADEMIC_YEAR_START else today.year - 1


def birth_problems(
    born: dt.date, record: PlacementIn | CareSettingIn | AssessmentIn
) -> list[Violation]:
    """What in ``record`` contradicts the child's birth date (a cross-record check the
    registry and the import rows make): an assessment or care setting before birth, a
    placement in an academic year starting before the year the child turns 2."""
    if isinstance(record, PlacementIn):
        if int(record.academic_year[:4]) < born.year + FIRST_PLACEMENT_AGE:
            return [
                Violation(
                    "academic_year",
                    f"must not start before the year the child turns {FIRST_PLACEMENT_AGE}",
                )
            ]
    elif isinstance(record, CareSettingIn):
        if record.since < born:
            return [Violation("since", "must not be before the child's date of birth")]
    elif record.assessment_date < born:
        return [Violation("assessment_date", "must not be before the child's date of birth")]
    return []


def _one_of(what: str, allowed: Sequence[str]) -> Callable[[str], str]:
    allowed_set = frozenset(allowed)
    shown = (
        f"expected one of: {', '.join(allowed)}"
        if len(allowed) <= 12
        else f"see the {what} code list in docs/import-format.md"
    )

    def check(value: str) -> str:
        if value not in allowed_set:
            raise ValueError(f"unknown {what}; {shown}")
        return value

    return check


def _matches(what: str, pattern: re.Pattern[str]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"not a valid {what}")
        return value

    return check


def _unique(value: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(value)) != len(value):
        raise ValueError("must not repeat an entry")
    return value


def _academic_year(value: str) -> str:
    if not codes.is_valid_academic_year(value):
        raise ValueError("must look like 2023/24 (start year / next year's last two digits)")
    return value


def _placement_year(value: str) -> str:
    # The year's start: no earlier than the year a child born on the earliest birth date
    # turns 2 (the registry checks the child's own birth: birth_problems), no later than
    # next academic year ("0000/01" and "9999/00" are well-formed but refused here).
    start = int(value[:4])
    earliest = EARLIEST_BIRTH.year + FIRST_PLACEMENT_AGE
    if start < earliest:
        raise ValueError(f"must start in {earliest} or later")
    if start > current_academic_year_start() + 1:
        raise ValueError("must not be later than next academic year")
    return value


ChildId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"),
]
NationalId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Z0-9]{5,20}$")]
#: Free text (every name, short text, institution, commission...): NFC, no control,
#: bidi or invisible formatting characters (:func:`text_problem`).
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_nfc),
    AfterValidator(_plain_text),
]
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_nfc),
    AfterValidator(_plain_text),
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()-]{5,32}$")]
AcademicYear = Annotated[str, AfterValidator(_academic_year)]
#: A placement's year: well-formed, and between 1992/93 and next academic year.
PlacementYear = Annotated[str, AfterValidator(_academic_year), AfterValidator(_placement_year)]
Sex = Annotated[str, AfterValidator(_one_of("sex", codes.SEXES))]


#: Validation context of a client reading a node's answer: the node checked the units
#: against its own profile, which the client (with the embedded one) may not hold.
UNITS_CHECKED_BY_NODE: Final = {"units_checked_by_node": True}


def _profile_unit(what: str) -> Callable[[str, ValidationInfo], str]:
    """A check against the country profile's units (childreg.profile), read when called;
    skipped for a node's answer read by a client (:data:`UNITS_CHECKED_BY_NODE`)."""

    def check(value: str, info: ValidationInfo) -> str:
        if info.context and info.context.get("units_checked_by_node"):
            return value
        known = codes.is_district(value) if what == "district" else value in codes.regions()
        if not known:
            raise ValueError(f"unknown {what}; see the {what} codes of the country profile")
        return value

    return check


District = Annotated[str, AfterValidator(_profile_unit("district"))]
Region = Annotated[str, AfterValidator(_profile_unit("region"))]
#: Identifiers of parties and departments in configuration (also used in DNS names).
PartyId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
EducationForm = Annotated[str, AfterValidator(_one_of("form of education", codes.EDUCATION_FORMS))]
CareSetting = Annotated[str, AfterValidator(_one_of("care setting", codes.CARE_SETTINGS))]
ImpairmentBand = Annotated[str, AfterValidator(_one_of("impairment band", codes.IMPAIRMENT_BANDS))]
IcfCode = Annotated[str, AfterValidator(_matches("ICF-CY code (e.g. d140.2)", codes.ICF_CODE_RE))]
Icd10Code = Annotated[
    str, AfterValidator(_matches("ICD-10 diagnosis code (e.g. F84.0)", codes.ICD10_CODE_RE))
]
Support = Annotated[str, AfterValidator(_one_of("support", codes.SUPPORTS))]
Accommodation = Annotated[str, AfterValidator(_one_of("accommodation", codes.ACCOMMODATIONS))]
Dimension = Annotated[str, AfterValidator(_one_of("dimension", tuple(codes.DIMENSIONS)))]

_LIST = 32  # the most entries any coded list field may carry


class Model(BaseModel):
    """Base: immutable, unknown fields refused, whitespace trimmed."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ChildIn(Model):
    """A child's identifying record, as department staff register or update it."""

    child_id: ChildId
    national_id: NationalId | None = None
    given_name: Name
    family_name: Name
    date_of_birth: IsoDate
    sex: Sex
    district: District
    guardian_name: Name | None = None
    guardian_phone: Phone | None = None

    @model_validator(mode="after")
    def _plausible_birth(self) -> Self:
        if self.date_of_birth < EARLIEST_BIRTH:
            raise ValueError(f"date_of_birth must be on or after {EARLIEST_BIRTH.isoformat()}")
        if self.date_of_birth > dt.date.today():
            raise ValueError("date_of_birth must not be in the future")
        return self


class ChildRefIn(Model):
    """A reference to one child by the node's internal id."""

    child_id: ChildId


class PlacementIn(Model):
    """Where a child is educated in one academic year."""

    child_id: ChildId
    academic_year: PlacementYear
    education_form: EducationForm
    institution: ShortText | None = None


class CareSettingIn(Model):
    """Where a child lives, from a date on."""

    child_id: ChildId
    care_setting: CareSetting
    since: IsoDate

    @model_validator(mode="after")
    def _not_future(self) -> Self:
        if self.since > dt.date.today():
            raise ValueError("since must not be in the future")
        return self


class FunctioningItem(Model):
    """One child-functioning domain and the difficulty (or frequency) observed."""

    domain: Annotated[str, AfterValidator(_one_of("functioning domain", codes.FUNCTIONING_DOMAINS))]
    level: str

    @model_validator(mode="after")
    def _level_fits_domain(self) -> Self:
        allowed = (
            codes.FREQUENCY_LEVELS
            if self.domain in codes.FREQUENCY_DOMAINS
            else codes.DIFFICULTY_LEVELS
        )
        if self.level not in allowed:
            raise ValueError(f"level for {self.domain} must be one of: {', '.join(allowed)}")
        return self


class AssessmentIn(Model):
    """A psychological-medical-pedagogical commission's assessment of a child."""

    child_id: ChildId
    assessment_date: IsoDate
    commission: ShortText
    impairment_band: ImpairmentBand | None = None
    icf_codes: Annotated[tuple[IcfCode, ...], AfterValidator(_unique), Field(max_length=_LIST)] = ()
    diagnoses: Annotated[
        tuple[Icd10Code, ...], AfterValidator(_unique), Field(max_length=_LIST)
    ] = ()
    functioning: Annotated[tuple[FunctioningItem, ...], Field(max_length=_LIST)] = ()
    recommended_form: EducationForm | None = None
    supports: Annotated[tuple[Support, ...], AfterValidator(_unique), Field(max_length=_LIST)] = ()
    accommodations: Annotated[
        tuple[Accommodation, ...], AfterValidator(_unique), Field(max_length=_LIST)
    ] = ()
    next_review: IsoDate | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        domains = [f.domain for f in self.functioning]
        if len(set(domains)) != len(domains):
            raise ValueError("functioning must name each domain at most once")
        if self.next_review is not None:
            if self.next_review <= self.assessment_date:
                raise ValueError("next_review must be after assessment_date")
            if self.next_review > years_after(self.assessment_date, MAX_REVIEW_YEARS):
                raise ValueError(
                    f"next_review must be within {MAX_REVIEW_YEARS} years of assessment_date"
                )
        if self.assessment_date > dt.date.today():
            raise ValueError("assessment_date must not be in the future")
        return self


class ImportRecord(Model):
    """One row of a bulk import: a new child with its placement and optional extras."""

    line: int = Field(ge=1)
    child: ChildIn
    placement: PlacementIn
    care: CareSettingIn | None = None
    assessment: AssessmentIn | None = None

    @model_validator(mode="after")
    def _one_child(self) -> Self:
        ids = {self.placement.child_id}
        ids |= {x.child_id for x in (self.care, self.assessment) if x is not None}
        if ids != {self.child.child_id}:
            raise ValueError("every part of the row must name the same child_id")
        parts = {"placement": self.placement, "care": self.care, "assessment": self.assessment}
        for name, part in parts.items():
            for v in birth_problems(self.child.date_of_birth, part) if part else ():
                raise ValueError(f"{name}.{v.field} {v.problem}")
        return self


class ChildView(Model):
    """Everything a node holds about one child, as returned to department staff."""

    child: ChildIn
    placements: tuple[PlacementIn, ...] = ()
    care_settings: tuple[CareSettingIn, ...] = ()
    assessments: tuple[AssessmentIn, ...] = ()
    closed_on: dt.date | None = None  # the record's closing date, None while open
    close_reason: str | None = None  # a code of childreg.codes.CLOSE_REASONS


class TableQuery(Model):
    """A request for a dense count table of one academic year over some dimensions."""

    academic_year: AcademicYear
    dimensions: Annotated[
        tuple[Dimension, ...], AfterValidator(_unique), Field(min_length=1, max_length=4)
    ]

    @property
    def reference_date(self) -> dt.date:
        """The snapshot's census day."""
        return codes.reference_date(self.academic_year)


#: Catalogue table ids (childreg.catalogue): a slug.
TableId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class NoisyTableQuestion(Model):
    """The coordinator's question to a node: one table of a signed catalogue at a snapshot."""

    signed_catalogue: bytes = Field(min_length=1, max_length=256 * 1024)
    table_id: TableId
    academic_year: AcademicYear


M = TypeVar("M", bound=BaseModel)
_NAMED = re.compile(r"^([a-z_]+(?:\.[a-z_]+)*) (must .*)$", re.ASCII | re.DOTALL)


def violations_of(
    exc: ValidationError, *, prefix: str = "", line: int | None = None
) -> list[Violation]:
    """Turn a pydantic error into public violations: field path and message, never the input."""
    out: list[Violation] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        named = _NAMED.match(msg) if not loc else None
        if named:  # a check of the whole model whose message starts with the field's name
            loc, msg = named.group(1), named.group(2)
        field = ".".join(x for x in (prefix, loc) if x) or prefix or "record"
        out.append(Violation(field=field, problem=msg, line=line))
    return out


def parse(
    model: type[M], data: Any, *, what: str | None = None, context: dict[str, Any] | None = None
) -> M:
    """Validate ``data`` as ``model`` or raise :class:`InvalidInput` listing every violation."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        name = what or model.__name__
        raise InvalidInput(f"invalid {name}", violations_of(exc)) from None
