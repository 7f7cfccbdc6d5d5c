"""The embedded 2023/24 seed figures and the seed-statistics CSV loader."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from childreg import codes
from childreg.errors import InvalidInput, Violation
from childreg.seed import (
    SEED_ACADEMIC_YEAR,
    SEED_FIGURES,
    SEED_FORM_COUNTS,
    SEED_TOTALS,
    SeedFigures,
    load_seed_csv,
    total_problems,
)
from tests.reference import reference_file

SHARED_SEED = reference_file("data/seed_statistics.csv")
HEADER = "country,reference_period,measure,education_form,count,note\n"
PUBLISHED_FORMS = (
    "preschool",
    "mainstream_class",
    "inclusive_class",
    "integrated_inclusive_school",
    "home_education",
    "special_school",
    "integrated_boarding_school",
    "special_boarding_school",
    "rehabilitation_centre",
)


def seed_lines(**overrides: int) -> list[str]:
    """The embedded figures as CSV data lines, with some counts replaced."""
    counts = {**SEED_FORM_COUNTS, **SEED_TOTALS}
    counts.update(overrides)
    lines = [f"AZ,2023/24,children_with_disabilities,{form},{n},\n" for form, n in counts.items()]
    lines.append("AZ,2023/24,schools,inclusive_schools,40,not a children row\n")
    return lines


def write_seed(path: Path, lines: list[str]) -> Path:
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


def test_embedded_figures_equal_the_shared_seed_file() -> None:
    """The embedded constants equal the published data/seed_statistics.csv row by row."""
    assert SHARED_SEED.is_file(), f"the shared seed file must exist at {SHARED_SEED}"
    with SHARED_SEED.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["measure"] == "children_with_disabilities"]
    published = {r["education_form"]: int(r["count"]) for r in rows}
    assert {r["reference_period"] for r in rows} == {SEED_ACADEMIC_YEAR}
    assert {r["country"] for r in rows} == {"AZ"}
    assert published == {**SEED_FORM_COUNTS, **SEED_TOTALS}


def test_loading_the_shared_seed_file_gives_the_embedded_figures() -> None:
    """load_seed_csv of the shared file equals SEED_FIGURES."""
    assert SHARED_SEED.is_file(), f"the shared seed file must exist at {SHARED_SEED}"
    assert load_seed_csv(SHARED_SEED) == SEED_FIGURES


def test_embedded_figures_cover_the_nine_published_forms_and_add_up() -> None:
    """The embedded forms are the nine published ones and both totals are sums of their forms."""
    assert tuple(SEED_FORM_COUNTS) == PUBLISHED_FORMS
    assert total_problems(SEED_FORM_COUNTS, SEED_TOTALS) == []
    assert SEED_TOTALS["general_education_total"] == sum(
        SEED_FORM_COUNTS[f] for f in codes.GENERAL_EDUCATION_FORMS
    )
    assert SEED_FIGURES.total_children == 32593


def test_all_form_counts_gives_zero_for_unpublished_forms() -> None:
    """all_form_counts lists every education form, with 0 for day care and not enrolled."""
    counts = SEED_FIGURES.all_form_counts()
    assert tuple(counts) == codes.EDUCATION_FORMS
    assert counts["day_care_centre"] == 0
    assert counts["not_enrolled"] == 0
    assert counts["home_education"] == 7210


def test_total_that_does_not_add_up_is_rejected_with_its_line(tmp_path: Path) -> None:
    """A total different from the sum of its forms is refused, naming the total and its line."""
    path = write_seed(tmp_path / "s.csv", seed_lines(special_provision_total=12045))
    with pytest.raises(InvalidInput) as info:
        load_seed_csv(path)
    assert info.value.violations == [
        Violation(
            "special_provision_total",
            "is 12045 but its forms (inclusive_class, integrated_inclusive_school, "
            "home_education, special_school, integrated_boarding_school, "
            "special_boarding_school) sum to 12044",
            12,
        )
    ]


def test_changed_form_breaks_both_totals(tmp_path: Path) -> None:
    """Changing one special-provision form makes both totals disagree."""
    path = write_seed(tmp_path / "s.csv", seed_lines(home_education=7211))
    with pytest.raises(InvalidInput) as info:
        load_seed_csv(path)
    assert [v.field for v in info.value.violations] == [
        "general_education_total",
        "special_provision_total",
    ]


def test_bad_rows_are_all_reported(tmp_path: Path) -> None:
    """Unknown forms, bad counts, repeated forms and mixed periods are each reported."""
    lines = [
        *seed_lines(),
        "AZ,2023/24,children_with_disabilities,gymnasium,5,\n",
        "AZ,2023/24,children_with_disabilities,day_care_centre,-3,\n",
        "AZ,2023/24,children_with_disabilities,preschool,509,\n",
        "AZ,2022/23,children_with_disabilities,not_enrolled,4,\n",
    ]
    path = write_seed(tmp_path / "s.csv", lines)
    with pytest.raises(InvalidInput) as info:
        load_seed_csv(path)
    assert info.value.violations == [
        Violation("education_form", "unknown form or total", 14),
        Violation("count", "must be a whole number >= 0", 15),
        Violation("education_form", "repeated (first on line 2)", 16),
        Violation("reference_period", "rows name more than one period"),
    ]


def test_missing_column_is_reported(tmp_path: Path) -> None:
    """A file without the count column is refused."""
    path = tmp_path / "s.csv"
    path.write_text("country,reference_period,measure,education_form\nAZ,2023/24,x,y\n")
    with pytest.raises(InvalidInput) as info:
        load_seed_csv(path)
    assert info.value.violations == [Violation("count", "required column is missing", 1)]


def test_file_without_children_rows_is_rejected(tmp_path: Path) -> None:
    """A file with no children_with_disabilities rows is refused."""
    path = write_seed(tmp_path / "s.csv", ["AZ,2023/24,schools,inclusive_schools,40,\n"])
    with pytest.raises(InvalidInput) as info:
        load_seed_csv(path)
    assert [v.field for v in info.value.violations] == ["measure"]


def test_absent_totals_are_derived_and_unlisted_forms_are_zero(tmp_path: Path) -> None:
    """Without total rows the totals are the sums of the listed forms; unlisted forms count 0."""
    lines = [
        "XX,2024/25,children_with_disabilities,mainstream_class,10,\n",
        "XX,2024/25,children_with_disabilities,home_education,3,\n",
        "XX,2024/25,children_with_disabilities,day_care_centre,2,\n",
    ]
    figures = load_seed_csv(write_seed(tmp_path / "s.csv", lines))
    assert figures == SeedFigures(
        country="XX",
        academic_year="2024/25",
        form_counts={"mainstream_class": 10, "home_education": 3, "day_care_centre": 2},
        totals={"general_education_total": 13, "special_provision_total": 3},
    )
    assert figures.count("preschool") == 0
    assert figures.total_children == 15


def test_total_given_without_its_forms_is_rejected(tmp_path: Path) -> None:
    """A total whose member forms are not all listed cannot be checked, so it is refused."""
    lines = [
        "AZ,2023/24,children_with_disabilities,special_provision_total,5,\n",
        "AZ,2023/24,children_with_disabilities,home_education,5,\n",
    ]
    with pytest.raises(InvalidInput) as info:
        load_seed_csv(write_seed(tmp_path / "s.csv", lines))
    [violation] = info.value.violations
    assert violation.field == "special_provision_total"
    assert violation.line == 2
    assert "inclusive_class" in violation.problem


def test_non_utf8_seed_file_is_rejected(tmp_path: Path) -> None:
    """A seed file that is not UTF-8 is refused with an encoding violation."""
    path = tmp_path / "s.csv"
    path.write_bytes(
        (HEADER + "AZ,2023/24,children_with_disabilities,preschool,5,caf\xe9\n").encode("latin-1")
    )
    with pytest.raises(InvalidInput) as info:
        load_seed_csv(path)
    assert [v.field for v in info.value.violations] == ["encoding"]
