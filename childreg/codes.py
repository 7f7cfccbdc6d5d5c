"""Public code lists: the only categories a record may hold and a table may have.

Every party shares these lists, so a table's shape never depends on the data: a count
table over dimensions D1..Dk always has exactly prod(len(codes(Di))) cells, in the
canonical order given by :func:`grid`.  Vocabularies follow docs/design/architecture.md; the
regions and districts (and the census day) come from the process's country profile
(:mod:`childreg.profile`), so they are data, not code.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Final

from childreg.profile import active

EDUCATION_FORMS: Final = (
    "preschool",
    "mainstream_class",
    "inclusive_class",
    "integrated_inclusive_school",
    "home_education",
    "special_school",
    "integrated_boarding_school",
    "special_boarding_school",
    "rehabilitation_centre",
    "day_care_centre",
    "not_enrolled",
)

#: Forms that make up "educated through special provision" in the published figures.
SPECIAL_PROVISION_FORMS: Final = (
    "inclusive_class",
    "integrated_inclusive_school",
    "home_education",
    "special_school",
    "integrated_boarding_school",
    "special_boarding_school",
)
#: School-age forms counted in "attending general education institutions".
GENERAL_EDUCATION_FORMS: Final = ("mainstream_class", *SPECIAL_PROVISION_FORMS)

#: Published totals, each the sum of a set of forms.
FORM_TOTALS: Final[dict[str, tuple[str, ...]]] = {
    "general_education_total": GENERAL_EDUCATION_FORMS,
    "special_provision_total": SPECIAL_PROVISION_FORMS,
}

CARE_SETTINGS: Final = (
    "family",
    "kinship_guardianship",
    "foster_family",
    "state_residential_institution",
    "boarding_school_residence",
    "shelter",
)
#: Table category for a child with no care setting recorded on the reference date.
CARE_NOT_RECORDED: Final = "not_recorded"

#: Why a child's record was closed (the record stays, for audit and history).
CLOSE_REASONS: Final = ("aged_out", "moved_abroad", "deceased", "other")

#: Why a child's record was erased (crypto-shredded): a code, never free text, so the
#: reason may stand in the tombstone, the audit leaf's purpose and the guardian's receipt.
#: The two ``retention_*`` codes are set by the retention rules (node/records/retention.py).
ERASE_REASONS: Final = (
    "guardian_request",
    "registered_in_error",
    "legal_order",
    "retention_after_closed",
    "retention_after_age",
)

SEXES: Final = ("female", "male")

#: Age bands at the snapshot's reference date: (code, lowest age, highest age or None).
AGE_BANDS: Final[tuple[tuple[str, int, int | None], ...]] = (
    ("age_0_2", 0, 2),
    ("age_3_5", 3, 5),
    ("age_6_10", 6, 10),
    ("age_11_14", 11, 14),
    ("age_15_17", 15, 17),
    ("age_18_plus", 18, None),
)

#: Degree of health impairment bands used by the commissions.
IMPAIRMENT_BANDS: Final = ("pct_25_40", "pct_41_60", "pct_61_80", "pct_81_100")
#: Table category for a child with no assessment on or before the reference date.
IMPAIRMENT_NOT_ASSESSED: Final = "not_assessed"

#: UNICEF / Washington Group Child Functioning Module domains.
FUNCTIONING_DOMAINS: Final = (
    "seeing",
    "hearing",
    "walking",
    "fine_motor",
    "communication",
    "learning",
    "remembering",
    "concentrating",
    "accepting_change",
    "controlling_behaviour",
    "making_friends",
    "anxiety",
    "depression",
    "self_care",
)
DIFFICULTY_LEVELS: Final = (
    "no_difficulty",
    "some_difficulty",
    "a_lot_of_difficulty",
    "cannot_do_at_all",
)
#: The two affect domains are asked as frequencies, not difficulty.
FREQUENCY_LEVELS: Final = ("never", "few_times_a_year", "monthly", "weekly", "daily")
FREQUENCY_DOMAINS: Final = ("anxiety", "depression")

SUPPORTS: Final = (
    "adapted_curriculum",
    "assistive_technology",
    "braille",
    "individual_education_plan",
    "physiotherapy",
    "psychological_support",
    "sign_language",
    "speech_therapy",
    "teaching_assistant",
    "transport",
)
ACCOMMODATIONS: Final = (
    "accessible_building",
    "alternative_format",
    "extra_time",
    "large_print",
    "reduced_workload",
    "rest_breaks",
    "seating_position",
)

ICF_CODE_RE: Final = re.compile(r"^[bsde][0-9]{1,5}(?:[.+][0-9]{1,3})?$")
ICD10_CODE_RE: Final = re.compile(r"^[A-Z][0-9]{2}(?:\.[0-9A-Z]{1,4})?$")

#: Every code list a person reads names of (the country profile names each code per
#: language: ``Profile.code_name``). Table categories (not_recorded, not_assessed) are in
#: the list of the dimension they belong to.
CODE_LISTS: Final[dict[str, tuple[str, ...]]] = {
    "education_form": EDUCATION_FORMS,
    "care_setting": (*CARE_SETTINGS, CARE_NOT_RECORDED),
    "close_reason": CLOSE_REASONS,
    "sex": SEXES,
    "age_band": tuple(code for code, _, _ in AGE_BANDS),
    "impairment_band": (*IMPAIRMENT_BANDS, IMPAIRMENT_NOT_ASSESSED),
    "functioning_domain": FUNCTIONING_DOMAINS,
    "difficulty_level": DIFFICULTY_LEVELS,
    "frequency_level": FREQUENCY_LEVELS,
    "support": SUPPORTS,
    "accommodation": ACCOMMODATIONS,
}


def named(code_list: str, language: str) -> list[tuple[str, str]]:
    """Every code of ``code_list`` (a key of :data:`CODE_LISTS`; KeyError otherwise) with
    its name in ``language`` from the country profile, in the list's order (what a form's
    choices show)."""
    profile = active()
    return [(code, profile.code_name(code_list, code, language)) for code in CODE_LISTS[code_list]]


def code_names_problem(names: Mapping[str, Mapping[str, Mapping[str, str]]]) -> str | None:
    """What is wrong with a profile's code names (list -> code -> language -> name), or
    None: each list must be one of :data:`CODE_LISTS`, each code one of its list, and
    each list that is named must name every one of its codes in English at least."""
    for listed, codes_named in names.items():
        known = CODE_LISTS.get(listed)
        if known is None:
            return f"unknown code list {listed!r}; expected one of {', '.join(CODE_LISTS)}"
        strangers = sorted(set(codes_named) - set(known))
        if strangers:
            return f"{listed}: not codes of the list: {', '.join(strangers)}"
        unnamed = [c for c in known if "en" not in codes_named.get(c, {})]
        if unnamed:
            return f"{listed}: no English name for {', '.join(unnamed)}"
    return None


#: The two geographic dimensions: their categories come from the country profile.
GEOGRAPHY: Final = ("region", "district")


def regions() -> dict[str, tuple[str, ...]]:
    """Region -> its district codes, from the process's country profile (childreg.profile)."""
    return active().region_districts()


def districts() -> tuple[str, ...]:
    """Every district code of the country profile, region by region."""
    return active().districts()


def is_district(code: str) -> bool:
    """True for a district of the country profile."""
    return active().has_district(code)


def region_of(district: str) -> str:
    """The region of a district of the country profile; KeyError for another code."""
    return active().region_of(district)


_FIXED_DIMENSIONS: Final[dict[str, tuple[str, ...]]] = {
    "education_form": EDUCATION_FORMS,
    "sex": SEXES,
    "age_band": tuple(code for code, _, _ in AGE_BANDS),
    "care_setting": (*CARE_SETTINGS, CARE_NOT_RECORDED),
    "impairment_band": (*IMPAIRMENT_BANDS, IMPAIRMENT_NOT_ASSESSED),
}


class _Dimensions(Mapping[str, tuple[str, ...]]):
    """The dimensions in canonical order; region and district read the country profile."""

    def __getitem__(self, dimension: str) -> tuple[str, ...]:
        if dimension == "region":
            return active().region_codes()
        if dimension == "district":
            return districts()
        return _FIXED_DIMENSIONS[dimension]

    def __iter__(self) -> Iterator[str]:
        return iter((*_FIXED_DIMENSIONS, *GEOGRAPHY))

    def __len__(self) -> int:
        return len(_FIXED_DIMENSIONS) + len(GEOGRAPHY)


#: Dimensions a count table may be broken down by, with their categories (canonical order).
DIMENSIONS: Final[Mapping[str, tuple[str, ...]]] = _Dimensions()

#: ASCII digits only: "\d" would also accept other scripts' digits, giving one snapshot
#: many spellings (each with its own budget).
ACADEMIC_YEAR_RE: Final = re.compile(r"([0-9]{4})/([0-9]{2})")


def codes(dimension: str) -> tuple[str, ...]:
    """The categories of a dimension; raises KeyError for an unknown dimension."""
    return DIMENSIONS[dimension]


def grid(dimensions: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """Every cell of a dense table over ``dimensions``, in canonical (row-major) order."""
    return itertools.product(*(codes(d) for d in dimensions))


def grid_size(dimensions: Sequence[str]) -> int:
    """The number of cells of a dense table over ``dimensions``."""
    size = 1
    for d in dimensions:
        size *= len(codes(d))
    return size


def is_valid_academic_year(year: str) -> bool:
    """True for 'YYYY/YY' where YY is the year after YYYY."""
    m = ACADEMIC_YEAR_RE.fullmatch(year)
    return m is not None and (int(m.group(1)) + 1) % 100 == int(m.group(2))


def reference_date(academic_year: str) -> dt.date:
    """The census day of an academic year by the country profile, e.g. AZ '2023/24' ->
    2023-09-15."""
    if not is_valid_academic_year(academic_year):
        raise ValueError("academic year must look like 2023/24")
    return active().reference_date(academic_year)


def age_on(born: dt.date, on: dt.date) -> int:
    """Completed years of age on a date."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def age_band(born: dt.date, on: dt.date) -> str:
    """The age-band code of a child born on ``born`` at date ``on``."""
    age = age_on(born, on)
    for code, low, high in AGE_BANDS:
        if age >= low and (high is None or age <= high):
            return code
    return AGE_BANDS[0][0]  # born after the reference date: youngest band


def age_band_birth_ranges(on: dt.date) -> list[tuple[str, dt.date | None, dt.date | None]]:
    """For each age band, the birth dates (earliest, latest inclusive) that fall in it on ``on``.

    Lets a store compute age bands in SQL by comparing ISO date strings.
    """
    ranges: list[tuple[str, dt.date | None, dt.date | None]] = []
    for code, low, high in AGE_BANDS:
        latest = _years_before(on, low)
        earliest = None if high is None else _years_before(on, high + 1) + dt.timedelta(days=1)
        ranges.append((code, earliest, None if low == 0 else latest))
    return ranges


def _years_before(on: dt.date, years: int) -> dt.date:
    try:
        return on.replace(year=on.year - years)
    except ValueError:  # 29 February
        return on.replace(year=on.year - years, day=28)
