"""The CSV import format: parsing, violations without values, file-level problems, round trip."""

from __future__ import annotations

import csv
import datetime as dt
import re
import tempfile
import tracemalloc
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from childreg import codes, csvformat
from childreg.csvformat import COLUMN_NAMES, COLUMNS, check_file, iter_rows
from childreg.errors import Violation
from childreg.models import (
    AssessmentIn,
    CareSettingIn,
    ChildIn,
    FunctioningItem,
    ImportRecord,
    PlacementIn,
    current_academic_year_start,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "import-format.md"
MARKER = "QZXMARKER"

MINIMAL: dict[str, str] = {
    "child_id": "C-1",
    "given_name": "Aysel",
    "family_name": "Synth-0001",
    "date_of_birth": "2015-03-02",
    "sex": "female",
    "district": "yasamal",
    "academic_year": "2023/24",
    "education_form": "mainstream_class",
}
FULL: dict[str, str] = {
    "child_id": "C-2",
    "national_id": "SYN000000002",
    "given_name": " Əli ",
    "family_name": "Synth-0002",
    "date_of_birth": "2012-11-30",
    "sex": "male",
    "district": "ganja",
    "guardian_name": "Leyla Synth-0002",
    "guardian_phone": "+994 00 555 12 34",
    "academic_year": "2023/24",
    "education_form": "home_education",
    "institution": "School No. 7, Ganja",
    "care_setting": "family",
    "care_since": "2012-11-30",
    "assessment_date": "2023-05-10",
    "commission": "Ganja PMPC",
    "impairment_band": "pct_81_100",
    "icf_codes": "b735.3;d450.4",
    "diagnoses": "G80.1;G40.9",
    "functioning": "walking=cannot_do_at_all; anxiety=weekly;",
    "recommended_form": "special_school",
    "supports": "physiotherapy;assistive_technology",
    "accommodations": "accessible_building",
    "next_review": "2025-05-10",
}


def write_csv(
    path: Path, rows: Iterable[Mapping[str, str]], columns: Iterable[str] = COLUMN_NAMES
) -> Path:
    """Write rows under the given header with the csv module (what a spreadsheet does)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def results(path: Path) -> list[ImportRecord | list[Violation]]:
    return list(iter_rows(path))


def only_violations(path: Path) -> list[Violation]:
    items = results(path)
    assert items, "iter_rows yielded nothing"
    assert all(isinstance(i, list) for i in items), "a record was yielded for a bad file"
    return [v for i in items if isinstance(i, list) for v in i]


def problems_of(path: Path) -> set[tuple[int | None, str]]:
    """(line, field) of every violation in the file."""
    return {(v.line, v.field) for v in check_file(path)[1]}


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "good.csv", [MINIMAL, FULL])


def expected_full(line: int) -> ImportRecord:
    return ImportRecord(
        line=line,
        child=ChildIn(
            child_id="C-2",
            national_id="SYN000000002",
            given_name="Əli",
            family_name="Synth-0002",
            date_of_birth=dt.date(2012, 11, 30),
            sex="male",
            district="ganja",
            guardian_name="Leyla Synth-0002",
            guardian_phone="+994 00 555 12 34",
        ),
        placement=PlacementIn(
            child_id="C-2",
            academic_year="2023/24",
            education_form="home_education",
            institution="School No. 7, Ganja",
        ),
        care=CareSettingIn(child_id="C-2", care_setting="family", since=dt.date(2012, 11, 30)),
        assessment=AssessmentIn(
            child_id="C-2",
            assessment_date=dt.date(2023, 5, 10),
            commission="Ganja PMPC",
            impairment_band="pct_81_100",
            icf_codes=("b735.3", "d450.4"),
            diagnoses=("G80.1", "G40.9"),
            functioning=(
                FunctioningItem(domain="walking", level="cannot_do_at_all"),
                FunctioningItem(domain="anxiety", level="weekly"),
            ),
            recommended_form="special_school",
            supports=("physiotherapy", "assistive_technology"),
            accommodations=("accessible_building",),
            next_review=dt.date(2025, 5, 10),
        ),
    )


# --------------------------------------------------------------------------- good files


def test_good_file_parses_to_expected_records(good_file: Path) -> None:
    """A valid file yields one record per row, in order, equal to the expected records."""
    minimal = ImportRecord(
        line=2,
        child=ChildIn(
            child_id="C-1",
            given_name="Aysel",
            family_name="Synth-0001",
            date_of_birth=dt.date(2015, 3, 2),
            sex="female",
            district="yasamal",
        ),
        placement=PlacementIn(
            child_id="C-1", academic_year="2023/24", education_form="mainstream_class"
        ),
    )
    assert results(good_file) == [minimal, expected_full(3)]


def test_columns_may_come_in_any_order_and_optional_ones_may_be_absent(tmp_path: Path) -> None:
    """A header with columns reordered and optional columns left out still parses."""
    path = write_csv(tmp_path / "f.csv", [MINIMAL], columns=reversed(list(MINIMAL)))
    [record] = results(path)
    assert isinstance(record, ImportRecord)
    assert record.child.child_id == "C-1"
    assert record.care is None
    assert record.assessment is None


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    """A file starting with a UTF-8 byte-order mark parses like one without."""
    plain = write_csv(tmp_path / "plain.csv", [FULL])
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert results(bom) == [expected_full(2)]


def test_quoted_multiline_cell_keeps_line_numbers_of_row_starts(tmp_path: Path) -> None:
    """A row spanning two physical lines is numbered by its first line, and so is the next."""
    first = dict(MINIMAL, given_name="Aysel\n")  # trailing line break: trimmed like spaces
    second = dict(MINIMAL, child_id="C-9", institution="School No. 1\nannex")
    third = dict(MINIMAL, child_id="C-10", sex="bad")
    path = write_csv(tmp_path / "f.csv", [first, second, third])
    items = results(path)
    assert isinstance(items[0], ImportRecord)
    assert items[0].line == 2
    assert items[0].child.given_name == "Aysel"
    assert items[1:] == [
        [Violation("institution", "must not contain control characters", 4)],
        [Violation("sex", "unknown sex; expected one of: female, male", 6)],
    ]


def test_blank_rows_are_skipped(tmp_path: Path) -> None:
    """Rows whose cells are all empty are ignored and do not shift line numbers."""
    path = write_csv(tmp_path / "f.csv", [MINIMAL, {}, dict(MINIMAL, child_id="C-3")])
    items = results(path)
    assert [i.line for i in items if isinstance(i, ImportRecord)] == [2, 4]
    assert len(items) == 2


# --------------------------------------------------------------------------- bad rows


def test_bad_dates_are_reported_per_column(tmp_path: Path) -> None:
    """A malformed date and an impossible date are violations of their own columns."""
    rows = [
        dict(MINIMAL, date_of_birth="02.03.2015"),
        dict(MINIMAL, child_id="C-3", date_of_birth="2015-02-30"),
        dict(FULL, child_id="C-4", next_review="2025-5-1"),
    ]
    path = write_csv(tmp_path / "f.csv", rows)
    assert check_file(path)[1] == [
        Violation("date_of_birth", "must be a date written YYYY-MM-DD", 2),
        Violation("date_of_birth", "is not a real calendar date (YYYY-MM-DD)", 3),
        Violation("next_review", "must be a date written YYYY-MM-DD", 4),
    ]


def test_future_birth_date_is_a_date_of_birth_violation(tmp_path: Path) -> None:
    """A model-level rule (birth not in the future) is reported on the date_of_birth column."""
    future = (dt.date.today() + dt.timedelta(days=400)).isoformat()
    path = write_csv(tmp_path / "f.csv", [dict(MINIMAL, date_of_birth=future)])
    assert check_file(path) == (
        0,
        [Violation("date_of_birth", "must not be in the future", 2)],
    )


def test_unknown_form_of_education_is_reported(tmp_path: Path) -> None:
    """An education_form outside the code list is a violation naming the column."""
    path = write_csv(tmp_path / "f.csv", [dict(MINIMAL, education_form="gymnasium")])
    [violations] = results(path)
    assert isinstance(violations, list)
    assert [(v.field, v.line) for v in violations] == [("education_form", 2)]
    assert violations[0].problem.startswith("unknown form of education")


def test_duplicate_child_id_names_the_first_line(tmp_path: Path) -> None:
    """A repeated child_id is reported on the later line and names the first one."""
    rows = [MINIMAL, dict(MINIMAL, child_id="C-7"), dict(MINIMAL, given_name="Other")]
    path = write_csv(tmp_path / "f.csv", rows)
    items = results(path)
    assert isinstance(items[0], ImportRecord)
    assert isinstance(items[1], ImportRecord)
    assert items[2] == [Violation("child_id", "duplicate child_id (first on line 2)", 4)]


def test_over_long_cell_is_reported_and_not_validated_further(tmp_path: Path) -> None:
    """A cell over 1000 characters gets only the length violation; other cells still count."""
    row = dict(MINIMAL, given_name="x" * 1001, institution="y" * 1000, sex="robot")
    path = write_csv(tmp_path / "f.csv", [row])
    assert check_file(path)[1] == [
        Violation("given_name", "longer than 1000 characters", 2),
        Violation("sex", "unknown sex; expected one of: female, male", 2),
        Violation("institution", "String should have at most 200 characters", 2),
    ]


def test_row_with_wrong_number_of_cells_is_a_row_violation(tmp_path: Path) -> None:
    """A row with more or fewer cells than the header is reported for the row."""
    path = write_csv(tmp_path / "f.csv", [MINIMAL], columns=list(MINIMAL))
    with path.open("a", encoding="utf-8") as f:
        f.write("C-5,a,b\n")
        f.write(",".join(MINIMAL.values()) + ",extra\n")
    items = results(path)
    assert items[1:] == [
        [Violation("row", "has 3 cells but the header has 8", 3)],
        [Violation("row", "has 9 cells but the header has 8", 4)],
    ]


def test_empty_required_cells_are_reported(tmp_path: Path) -> None:
    """Every empty required cell is its own violation."""
    path = write_csv(tmp_path / "f.csv", [dict(MINIMAL, given_name=" ", district="")])
    assert check_file(path)[1] == [
        Violation("given_name", "required; the cell is empty", 2),
        Violation("district", "required; the cell is empty", 2),
    ]


def test_missing_child_id_is_reported_once(tmp_path: Path) -> None:
    """An empty child_id gives one violation, not one per part of the record."""
    path = write_csv(tmp_path / "f.csv", [dict(FULL, child_id="")])
    assert check_file(path)[1] == [Violation("child_id", "required; the cell is empty", 2)]


def test_assessment_columns_need_assessment_date(tmp_path: Path) -> None:
    """Assessment columns given without assessment_date are a violation of assessment_date."""
    row = dict(MINIMAL, commission="Yasamal PMPC", diagnoses="F84.0")
    path = write_csv(tmp_path / "f.csv", [row])
    assert check_file(path)[1] == [
        Violation("assessment_date", "required when other assessment columns are given", 2)
    ]


def test_assessment_date_needs_commission(tmp_path: Path) -> None:
    """An assessment_date without commission is a violation of commission."""
    path = write_csv(tmp_path / "f.csv", [dict(MINIMAL, assessment_date="2023-01-01")])
    assert check_file(path)[1] == [
        Violation("commission", "required when assessment_date is given", 2)
    ]


def test_care_columns_need_each_other(tmp_path: Path) -> None:
    """care_setting needs care_since and care_since needs care_setting."""
    rows = [
        dict(MINIMAL, care_setting="family"),
        dict(MINIMAL, child_id="C-3", care_since="2020-01-01"),
    ]
    path = write_csv(tmp_path / "f.csv", rows)
    assert check_file(path)[1] == [
        Violation("care_since", "required when care_setting is given", 2),
        Violation("care_setting", "required when care_since is given", 3),
    ]


def test_list_and_functioning_problems_name_the_entry(tmp_path: Path) -> None:
    """Problems inside list cells say which entry is wrong, under the list's column."""
    row = dict(
        FULL,
        icf_codes="b735.3;x9",
        functioning="walking=fine;sleep=no_difficulty",
        supports="braille;braille",
    )
    path = write_csv(tmp_path / "f.csv", [row])
    got = {(v.field, v.problem) for v in check_file(path)[1]}
    assert ("icf_codes", "entry 2: not a valid ICF-CY code (e.g. d140.2)") in got
    assert ("supports", "must not repeat an entry") in got
    functioning = sorted(p for f, p in got if f == "functioning")
    assert functioning[0].startswith("entry 1: level for walking must be one of")
    assert functioning[1].startswith("entry 2: unknown functioning domain")


def test_malformed_functioning_entries_are_listed(tmp_path: Path) -> None:
    """Functioning entries without '=' are all named in one violation."""
    row = dict(FULL, functioning="walking;seeing=no_difficulty;hearing")
    path = write_csv(tmp_path / "f.csv", [row])
    assert check_file(path)[1] == [
        Violation("functioning", "entries 1, 3 must look like domain=level", 2)
    ]


def test_several_bad_rows_list_every_row_and_column_without_values(tmp_path: Path) -> None:
    """Every bad row is listed with its line and columns, and no cell value leaks into a message."""
    m = MARKER
    rows = [
        MINIMAL,  # line 2, good
        dict(MINIMAL, child_id="C-3", sex=m, district=m.lower(), date_of_birth=f"{m}-01-01"),
        dict(MINIMAL, child_id="C-4"),  # line 4, good
        dict(
            FULL,
            child_id=f"{m}!",
            national_id=m.lower(),
            guardian_phone=m,
            academic_year=m,
            education_form=m,
            care_setting=m,
            care_since=m,
        ),
        dict(
            FULL,
            child_id="C-6",
            impairment_band=m,
            icf_codes=f"b1.1;{m}",
            diagnoses=m,
            functioning=f"walking={m};{m}=never",
            recommended_form=m,
            supports=m,
            accommodations=m,
            next_review=m,
            given_name=m * 200,
        ),
        dict(MINIMAL, child_id="C-1", given_name=m),  # duplicate of line 2
        dict(FULL, child_id="C-8", commission="\x01" + m, institution=m + "\x07"),
    ]
    path = write_csv(tmp_path / "f.csv", rows)
    good, violations = check_file(path)
    assert good == 2
    assert problems_of(path) == {
        (3, "sex"),
        (3, "district"),
        (3, "date_of_birth"),
        (5, "child_id"),
        (5, "national_id"),
        (5, "guardian_phone"),
        (5, "academic_year"),
        (5, "education_form"),
        (5, "care_setting"),
        (5, "care_since"),
        (6, "given_name"),
        (6, "impairment_band"),
        (6, "icf_codes"),
        (6, "diagnoses"),
        (6, "functioning"),
        (6, "recommended_form"),
        (6, "supports"),
        (6, "accommodations"),
        (6, "next_review"),
        (7, "child_id"),
        (8, "commission"),
        (8, "institution"),
    }
    for v in violations:
        assert m.lower() not in str(v).lower()
        assert m.lower() not in v.field.lower()
        assert m.lower() not in v.problem.lower()


# --------------------------------------------------------------------------- bad files


def test_missing_required_columns_one_violation_each_on_line_1(tmp_path: Path) -> None:
    """Each missing required column is one violation on line 1, and no row is yielded."""
    columns = [c for c in MINIMAL if c not in ("given_name", "sex")]
    path = write_csv(tmp_path / "f.csv", [MINIMAL, MINIMAL], columns=columns)
    items = results(path)
    assert items == [
        [
            Violation("given_name", "required column is missing", 1),
            Violation("sex", "required column is missing", 1),
        ]
    ]


def test_unknown_duplicate_and_unnamed_header_columns(tmp_path: Path) -> None:
    """Unknown, repeated and empty header names are file-level violations on line 1."""
    path = tmp_path / "f.csv"
    header = [*MINIMAL, "Given_Name", "sex", "", "favourite_colour", "favourite_colour"]
    path.write_text(",".join(header) + "\n" + ",".join(MINIMAL.values()) + ",a,b,c,d,e\n")
    assert results(path) == [
        [
            Violation("column 9", "unknown column name; did you mean given_name?", 1),
            Violation("sex", "repeats the name of column 5", 1),
            Violation("column 11", "the header cell is empty", 1),
            Violation("column 12", "unknown column name; see docs/import-format.md", 1),
            Violation("column 13", "repeats the name of column 12", 1),
        ]
    ]


def test_missing_header_row_does_not_echo_the_first_row(tmp_path: Path) -> None:
    """A file whose first line is data gets one violation that repeats none of its cells."""
    path = tmp_path / "f.csv"
    row = dict(MINIMAL, given_name=MARKER, family_name=MARKER)
    path.write_text(",".join(row.values()) + "\n" + ",".join(MINIMAL.values()) + "\n")
    [violation] = only_violations(path)
    assert violation == Violation(
        "file",
        "the first line is not a header row: it names none of the columns "
        "(see docs/import-format.md)",
        1,
    )


def test_semicolon_separated_file_gets_a_hint(tmp_path: Path) -> None:
    """A file saved with ';' between columns is refused with a hint about the separator."""
    path = tmp_path / "f.csv"
    path.write_text(";".join(MINIMAL) + "\n" + ";".join(MINIMAL.values()) + "\n")
    [violation] = only_violations(path)
    assert violation.field == "file"
    assert "separate columns with ','" in violation.problem


def test_latin1_file_reports_every_undecodable_line(tmp_path: Path) -> None:
    """A Latin-1 file is refused, listing each line that is not valid UTF-8 and nothing else."""
    rows = [
        dict(MINIMAL, given_name="José"),
        dict(MINIMAL, child_id="C-3"),
        dict(MINIMAL, child_id="C-4", family_name="Müller"),
    ]
    utf8 = write_csv(tmp_path / "u.csv", rows)
    latin1 = tmp_path / "l.csv"
    latin1.write_bytes(utf8.read_text("utf-8").encode("latin-1"))
    assert results(latin1) == [
        [
            Violation("encoding", "not valid UTF-8; save the file as UTF-8", 2),
            Violation("encoding", "not valid UTF-8; save the file as UTF-8", 4),
        ]
    ]


def test_empty_file_is_one_violation(tmp_path: Path) -> None:
    """An empty file (or one with only a BOM) yields one file-level violation."""
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf")
    for path in (empty, bom):
        [violation] = only_violations(path)
        assert violation.field == "file"
        assert violation.line == 1
        assert "empty" in violation.problem


def test_header_without_rows_is_valid_and_yields_nothing(tmp_path: Path) -> None:
    """A file with a valid header and no data rows yields nothing and has no violations."""
    path = write_csv(tmp_path / "f.csv", [{}])  # one all-empty row, skipped
    assert path.read_text().count("\n") == 2
    assert results(path) == []
    assert check_file(path) == (0, [])


def test_check_file_counts_good_rows_and_gathers_violations(tmp_path: Path) -> None:
    """check_file returns the good-row count and the violations of every bad row."""
    rows = [MINIMAL, dict(MINIMAL, child_id="C-3", sex="x"), dict(FULL), dict(FULL)]
    path = write_csv(tmp_path / "f.csv", rows)
    good, violations = check_file(path)
    assert good == 2
    assert [(v.line, v.field) for v in violations] == [(3, "sex"), (5, "child_id")]


def test_iter_rows_streams_in_bounded_memory(tmp_path: Path) -> None:
    """Reading a large file keeps far less in memory than the file's size."""
    path = tmp_path / "big.csv"
    filler = "z" * 190
    n = 15_000
    csvformat.write_rows(
        path,
        (
            dict(
                MINIMAL,
                child_id=f"C{i}",
                institution=filler,
                guardian_name="g" * 90,
                given_name="a" * 90,
                family_name="b" * 90,
            )
            for i in range(n)
        ),
    )
    size = path.stat().st_size
    assert size > 7_000_000
    tracemalloc.start()
    try:
        good = sum(isinstance(item, ImportRecord) for item in iter_rows(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert good == n
    assert peak < size / 2


# --------------------------------------------------------------------------- writing


def test_write_rows_refuses_unknown_columns(tmp_path: Path) -> None:
    """write_rows raises for a key that is not a column of the format."""
    with pytest.raises(ValueError, match="favourite_colour"):
        csvformat.write_rows(tmp_path / "f.csv", [dict(MINIMAL, favourite_colour="red")])


def test_record_to_row_writes_every_column(good_file: Path) -> None:
    """record_to_row gives a value for exactly the format's columns, in their order."""
    record = expected_full(2)
    row = csvformat.record_to_row(record)
    assert list(row) == list(COLUMN_NAMES)
    assert row["functioning"] == "walking=cannot_do_at_all;anxiety=weekly"
    assert row["care_since"] == "2012-11-30"


_NO_CONTROL = st.characters(
    exclude_categories=["Cs", "Cf"],
    exclude_characters="".join(map(chr, [*range(32), *range(127, 160), 0x2028, 0x2029])),
)


def _text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_NO_CONTROL, min_size=1, max_size=max_size)


def _unique(strategy: st.SearchStrategy[str], max_size: int) -> st.SearchStrategy[list[str]]:
    return st.lists(strategy, max_size=max_size, unique=True)


def _dates(since: dt.date = dt.date(1990, 1, 1)) -> st.SearchStrategy[dt.date]:
    """Dates from ``since`` up to today (today is read when a record is drawn, not at import)."""
    return st.dates(min_value=since, max_value=dt.date.today())


@st.composite
def record_data(draw: st.DrawFn) -> dict[str, Any]:
    """Input for an ImportRecord (without line), valid or not; the test keeps valid ones."""
    child_id = draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True))
    born = draw(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2020, 12, 31)))
    year = draw(st.integers(born.year + 2, current_academic_year_start() + 1))
    data: dict[str, Any] = {
        "child": {
            "child_id": child_id,
            "national_id": draw(st.none() | st.from_regex(r"[A-Z0-9]{5,20}", fullmatch=True)),
            "given_name": draw(_text(100)),
            "family_name": draw(_text(100)),
            "date_of_birth": born,
            "sex": draw(st.sampled_from(codes.SEXES)),
            "district": draw(st.sampled_from(codes.districts())),
            "guardian_name": draw(st.none() | _text(100)),
            "guardian_phone": draw(
                st.none() | st.from_regex(r"\+?[0-9][0-9 ()-]{3,30}[0-9]", fullmatch=True)
            ),
        },
        "placement": {
            "child_id": child_id,
            "academic_year": f"{year}/{(year + 1) % 100:02d}",
            "education_form": draw(st.sampled_from(codes.EDUCATION_FORMS)),
            "institution": draw(st.none() | _text(200)),
        },
    }
    if draw(st.booleans()):
        data["care"] = {
            "child_id": child_id,
            "care_setting": draw(st.sampled_from(codes.CARE_SETTINGS)),
            "since": draw(_dates(born)),
        }
    if draw(st.booleans()):
        assessed = draw(_dates(born))
        domains = draw(_unique(st.sampled_from(codes.FUNCTIONING_DOMAINS), 14))
        data["assessment"] = {
            "child_id": child_id,
            "assessment_date": assessed,
            "commission": draw(_text(200)),
            "impairment_band": draw(st.none() | st.sampled_from(codes.IMPAIRMENT_BANDS)),
            "icf_codes": draw(
                _unique(st.from_regex(codes.ICF_CODE_RE.pattern, fullmatch=True), 32)
            ),
            "diagnoses": draw(
                _unique(st.from_regex(codes.ICD10_CODE_RE.pattern, fullmatch=True), 32)
            ),
            "functioning": [
                {
                    "domain": d,
                    "level": draw(
                        st.sampled_from(
                            codes.FREQUENCY_LEVELS
                            if d in codes.FREQUENCY_DOMAINS
                            else codes.DIFFICULTY_LEVELS
                        )
                    ),
                }
                for d in domains
            ],
            "recommended_form": draw(st.none() | st.sampled_from(codes.EDUCATION_FORMS)),
            "supports": draw(_unique(st.sampled_from(codes.SUPPORTS), 10)),
            "accommodations": draw(_unique(st.sampled_from(codes.ACCOMMODATIONS), 7)),
            "next_review": draw(
                st.none()
                | st.dates(
                    min_value=assessed + dt.timedelta(days=1),
                    max_value=assessed + dt.timedelta(days=4 * 365),
                )
            ),
        }
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record_data(), min_size=1, max_size=5, unique_by=lambda d: d["child"]["child_id"]))
def test_round_trip_record_row_csv_record(datas: list[dict[str, Any]]) -> None:
    """record -> record_to_row -> write_rows -> iter_rows gives back equal records."""
    try:
        records = [ImportRecord.model_validate({"line": i + 2, **d}) for i, d in enumerate(datas)]
    except ValidationError:
        reject()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "round.csv"
        csvformat.write_rows(path, (csvformat.record_to_row(r) for r in records))
        assert list(iter_rows(path)) == records


# --------------------------------------------------------------------------- help and docs


def test_format_help_names_every_column_and_marks_required_ones() -> None:
    """format_help lists every column, starring exactly the required ones."""
    text = csvformat.format_help()
    for column in COLUMNS:
        starred = re.search(rf"^\s+{column.name}\*\s", text, re.MULTILINE) is not None
        plain = re.search(rf"^\s+{column.name}\s", text, re.MULTILINE) is not None
        assert starred == column.required
        assert starred or plain


def test_docs_list_every_column_and_every_code() -> None:
    """docs/import-format.md names every column and every code of every code list."""
    text = DOCS.read_text("utf-8")
    listed = [
        *COLUMN_NAMES,
        *codes.SEXES,
        *codes.EDUCATION_FORMS,
        *codes.CARE_SETTINGS,
        *codes.IMPAIRMENT_BANDS,
        *codes.FUNCTIONING_DOMAINS,
        *codes.DIFFICULTY_LEVELS,
        *codes.FREQUENCY_LEVELS,
        *codes.SUPPORTS,
        *codes.ACCOMMODATIONS,
        *codes.regions(),
        *codes.districts(),
    ]
    missing = [code for code in listed if f"`{code}`" not in text]
    assert missing == []
    for region, districts in codes.regions().items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{region}` |"))
        assert re.findall(r"`([a-z_]+)`", row)[1:] == list(districts)
    for column in COLUMNS:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{column.name}` |"))
        assert (row.split("|")[2].strip() == "*") == column.required


def test_docs_example_file_parses(tmp_path: Path) -> None:
    """The example CSV in docs/import-format.md is a valid import file."""
    text = DOCS.read_text("utf-8")
    example = text.split("```csv\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.csv"
    path.write_text(example, encoding="utf-8")
    items = results(path)
    assert len(items) == 2
    assert all(isinstance(i, ImportRecord) for i in items)
