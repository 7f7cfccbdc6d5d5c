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
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from childreg import codes
from childreg.errors import InvalidInput, Violation

EARLIEST_BIRTH = dt.date(1990, 1, 1)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _no_control(value: str) -> str:
    # Every character _CONTROL finds (Cc, Zl, Zp) is unprintable, so a printable string
    # (the usual case, and a C-level test) passes without the regex search.
    if not value.isprintable() and _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


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


ChildId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"),
]
NationalId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Z0-9]{5,20}$")]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_no_control),
]
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_control),
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()-]{5,32}$")]
AcademicYear = Annotated[str, AfterValidator(_academic_year)]
Sex = Annotated[str, AfterValidator(_one_of("sex", codes.SEXES))]


def _profile_unit(what: str) -> Callable[[str], str]:
    """A check against the country profile's units (childreg.profile), read when called."""

    def check(value: str) -> str:
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
    date_of_birth: dt.date
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
    academic_year: AcademicYear
    education_form: EducationForm
    institution: ShortText | None = None


class CareSettingIn(Model):
    """Where a child lives, from a date on."""

    child_id: ChildId
    care_setting: CareSetting
    since: dt.date


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
    assessment_date: dt.date
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
    next_review: dt.date | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        domains = [f.domain for f in self.functioning]
        if len(set(domains)) != len(domains):
            raise ValueError("functioning must name each domain at most once")
        if self.next_review is not None and self.next_review < self.assessment_date:
            raise ValueError("next_review must not be before assessment_date")
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
        return self


class ChildView(Model):
    """Everything a node holds about one child, as returned to department staff."""

    child: ChildIn
    placements: tuple[PlacementIn, ...] = ()
    care_settings: tuple[CareSettingIn, ...] = ()
    assessments: tuple[AssessmentIn, ...] = ()


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


def violations_of(
    exc: ValidationError, *, prefix: str = "", line: int | None = None
) -> list[Violation]:
    """Turn a pydantic error into public violations: field path and message, never the input."""
    out: list[Violation] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        field = ".".join(x for x in (prefix, loc) if x) or prefix or "record"
        msg = str(err["msg"]).removeprefix("Value error, ")
        out.append(Violation(field=field, problem=msg, line=line))
    return out


def parse(model: type[M], data: Any, *, what: str | None = None) -> M:
    """Validate ``data`` as ``model`` or raise :class:`InvalidInput` listing every violation."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        name = what or model.__name__
        raise InvalidInput(f"invalid {name}", violations_of(exc)) from None
