"""The published 2023/24 figures on children with disabilities in Azerbaijan, as data.

The synthetic federation is modelled on these figures: its national per-form totals equal
them exactly. They are embedded here so the package needs no data file (the same figures
are kept as CSV in tests/reference/data/seed_statistics.csv); :func:`load_seed_csv` reads
another file of the same format (``country, reference_period, measure, education_form,
count, note``) and checks that every published total equals the sum of its forms
(:data:`childreg.codes.FORM_TOTALS`).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from childreg import codes
from childreg.errors import InvalidInput, Violation

#: The measure whose rows give children per form of education.
MEASURE: Final = "children_with_disabilities"
SEED_COUNTRY: Final = "AZ"
SEED_ACADEMIC_YEAR: Final = "2023/24"

#: Children with disabilities per form of education, AZ 2023/24 (the nine published forms).
SEED_FORM_COUNTS: Final[dict[str, int]] = {
    "preschool": 509,
    "mainstream_class": 19811,
    "inclusive_class": 220,
    "integrated_inclusive_school": 578,
    "home_education": 7210,
    "special_school": 1443,
    "integrated_boarding_school": 647,
    "special_boarding_school": 1946,
    "rehabilitation_centre": 229,
}
#: The two published totals; each equals the sum of its forms in codes.FORM_TOTALS.
SEED_TOTALS: Final[dict[str, int]] = {
    "general_education_total": 31855,
    "special_provision_total": 12044,
}

_REQUIRED_COLUMNS: Final = ("country", "reference_period", "measure", "education_form", "count")


@dataclass(frozen=True)
class SeedFigures:
    """Published children-per-form counts of one country and academic year, with totals."""

    country: str
    academic_year: str
    form_counts: Mapping[str, int]
    totals: Mapping[str, int] = field(default_factory=dict)

    def count(self, form: str) -> int:
        """Children in ``form`` (0 for a form the figures do not list)."""
        return self.form_counts.get(form, 0)

    def all_form_counts(self) -> dict[str, int]:
        """Children per form for every code in codes.EDUCATION_FORMS, in code-list order."""
        return {form: self.count(form) for form in codes.EDUCATION_FORMS}

    @property
    def total_children(self) -> int:
        """All children over all forms."""
        return sum(self.form_counts.values())


SEED_FIGURES: Final = SeedFigures(
    country=SEED_COUNTRY,
    academic_year=SEED_ACADEMIC_YEAR,
    form_counts=dict(SEED_FORM_COUNTS),
    totals=dict(SEED_TOTALS),
)


def total_problems(
    form_counts: Mapping[str, int],
    totals: Mapping[str, int],
    lines: Mapping[str, int] | None = None,
) -> list[Violation]:
    """Violations for totals that are not the sum of their forms, or that miss a form."""
    problems: list[Violation] = []
    for total, members in codes.FORM_TOTALS.items():
        if total not in totals:
            continue
        line = (lines or {}).get(total)
        missing = [m for m in members if m not in form_counts]
        if missing:
            problems.append(
                Violation(total, f"is given but these forms are not: {', '.join(missing)}", line)
            )
            continue
        expected = sum(form_counts[m] for m in members)
        if totals[total] != expected:
            problems.append(
                Violation(
                    total,
                    f"is {totals[total]} but its forms ({', '.join(members)}) sum to {expected}",
                    line,
                )
            )
    return problems


def load_seed_csv(path: Path) -> SeedFigures:
    """Read a seed-statistics CSV (rows of measure children_with_disabilities).

    Forms not listed count 0; a total that is absent is derived from its forms. Raises
    :class:`InvalidInput` listing every problem (unknown form, bad count, repeated form,
    mixed countries or years, totals that do not add up).
    """
    rows = _Rows()
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in _REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InvalidInput(
                    "invalid seed statistics file",
                    [Violation(c, "required column is missing", 1) for c in missing],
                )
            for row in reader:
                rows.add({k: (v or "").strip() for k, v in row.items() if k}, reader.line_num)
    except UnicodeDecodeError:
        raise InvalidInput(
            "invalid seed statistics file",
            [Violation("encoding", "not valid UTF-8; save the file as UTF-8")],
        ) from None
    problems = rows.problems
    if not rows.lines and not problems:
        problems.append(Violation("measure", f"no rows with measure {MEASURE}"))
    if len(rows.countries) > 1:
        problems.append(Violation("country", "rows name more than one country"))
    if len(rows.years) > 1:
        problems.append(Violation("reference_period", "rows name more than one period"))
    year = next(iter(rows.years), "")
    if len(rows.years) == 1 and not codes.is_valid_academic_year(year):
        problems.append(Violation("reference_period", "must look like 2023/24"))
    problems += total_problems(rows.forms, rows.totals, rows.lines)
    if problems:
        raise InvalidInput("invalid seed statistics file", problems)
    totals = dict(rows.totals)
    for total, members in codes.FORM_TOTALS.items():
        totals.setdefault(total, sum(rows.forms.get(m, 0) for m in members))
    return SeedFigures(
        country=next(iter(rows.countries)),
        academic_year=year,
        form_counts=rows.forms,
        totals=totals,
    )


@dataclass
class _Rows:
    """What the children rows of a seed file said, and what was wrong with them."""

    forms: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    countries: set[str] = field(default_factory=set)
    years: set[str] = field(default_factory=set)
    problems: list[Violation] = field(default_factory=list)

    def add(self, row: dict[str, str], line: int) -> None:
        if row.get("measure") != MEASURE:
            return
        form = row.get("education_form", "")
        self.countries.add(row.get("country", ""))
        self.years.add(row.get("reference_period", ""))
        if form not in codes.EDUCATION_FORMS and form not in codes.FORM_TOTALS:
            self.problems.append(Violation("education_form", "unknown form or total", line))
            return
        if form in self.lines:
            first = self.lines[form]
            self.problems.append(
                Violation("education_form", f"repeated (first on line {first})", line)
            )
            return
        self.lines[form] = line
        text = row.get("count", "")
        if not text.isdigit():
            self.problems.append(Violation("count", "must be a whole number >= 0", line))
            return
        (self.totals if form in codes.FORM_TOTALS else self.forms)[form] = int(text)
