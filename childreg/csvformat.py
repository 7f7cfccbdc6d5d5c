"""The documented CSV import format: one row per child, shared by the CLI, synth and tests.

Departments bring their existing registers in as spreadsheets. This module is the one
place that knows the file format (column names, list and pair separators, date format),
so the import command, its ``--help`` text, ``docs/import-format.md`` and the synthetic
data generator cannot drift apart. Every row is validated by the pydantic models of
:mod:`childreg.models`; problems come back as :class:`~childreg.errors.Violation` lists
that name the line and the CSV column and never contain a cell's value (it may be
personal data).

File-level problems (not UTF-8, empty, bad header, a physical line too long to be a row)
are *yielded* by :func:`iter_rows` as a single violation list, and then nothing else is
yielded: a caller never has to catch an exception for a bad file, and a bad file never
yields a record. Only an operating-system error (file missing, unreadable) is raised.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, NamedTuple

from pydantic import ValidationError

from childreg import codes
from childreg.errors import Violation
from childreg.models import ImportRecord

#: Longest cell accepted, in characters; longer cells are reported and not validated.
MAX_CELL: Final = 1000
#: Longest physical line, in bytes, before the file is refused as not a CSV import.
MAX_LINE_BYTES: Final = 1 << 20
#: Separates the entries of a list cell (icf_codes, diagnoses, functioning, ...).
LIST_SEPARATOR: Final = ";"
#: Separates domain and level in a functioning entry.
PAIR_SEPARATOR: Final = "="
#: The field name used for a violation about the whole row rather than one column.
ROW: Final = "row"


class Column(NamedTuple):
    """One column of the import file: exact header name, whether required, what it holds."""

    name: str
    required: bool
    description: str


def _codes(values: Iterable[str]) -> str:
    return ", ".join(values)


#: Every column of the import format, in the order :func:`write_rows` writes them.
COLUMNS: Final[tuple[Column, ...]] = (
    Column(
        "child_id",
        True,
        "The department's identifier for the child, unique within the file: 1-64 letters, "
        "digits, '_', '.' or '-', starting with a letter or digit.",
    ),
    Column("national_id", False, "National personal identifier: 5-20 capital letters or digits."),
    Column("given_name", True, "Given name, up to 100 characters."),
    Column("family_name", True, "Family name, up to 100 characters."),
    Column(
        "date_of_birth",
        True,
        "Date of birth, YYYY-MM-DD; on or after 1990-01-01 and not in the future.",
    ),
    Column("sex", True, f"One of: {_codes(codes.SEXES)}."),
    Column("district", True, "District code where the child lives (see the district list)."),
    Column("guardian_name", False, "A guardian's full name, up to 100 characters."),
    Column(
        "guardian_phone",
        False,
        "A guardian's phone number: 5-32 digits, spaces, brackets or '-', optional leading '+'.",
    ),
    Column("academic_year", True, "Academic year of the placement, YYYY/YY, e.g. 2023/24."),
    Column("education_form", True, f"Form of education, one of: {_codes(codes.EDUCATION_FORMS)}."),
    Column("institution", False, "Name of the school or centre, up to 200 characters."),
    Column("care_setting", False, f"Where the child lives, one of: {_codes(codes.CARE_SETTINGS)}."),
    Column(
        "care_since",
        False,
        "Date the care setting began, YYYY-MM-DD; required if care_setting is given.",
    ),
    Column(
        "assessment_date",
        False,
        "Date of the commission's assessment, YYYY-MM-DD, not in the future; required if any "
        "other assessment column (commission .. next_review) is given.",
    ),
    Column(
        "commission",
        False,
        "The commission (PMPC) that assessed the child, up to 200 characters; required if "
        "assessment_date is given.",
    ),
    Column(
        "impairment_band",
        False,
        f"Degree of health impairment, one of: {_codes(codes.IMPAIRMENT_BANDS)}.",
    ),
    Column(
        "icf_codes",
        False,
        "ICF-CY codes with qualifiers separated by ';', e.g. b167.2;d450.3 (at most 32, "
        "no repeats).",
    ),
    Column(
        "diagnoses",
        False,
        "ICD-10 diagnosis codes separated by ';', e.g. F84.0;G40.9 (at most 32, no repeats).",
    ),
    Column(
        "functioning",
        False,
        "Child-functioning results as domain=level pairs separated by ';', e.g. "
        "walking=a_lot_of_difficulty;anxiety=weekly (each domain at most once).",
    ),
    Column("recommended_form", False, "Form of education the commission recommends (as above)."),
    Column("supports", False, f"Supports separated by ';', from: {_codes(codes.SUPPORTS)}."),
    Column(
        "accommodations",
        False,
        f"Accommodations separated by ';', from: {_codes(codes.ACCOMMODATIONS)}.",
    ),
    Column(
        "next_review",
        False,
        "Date of the next review, YYYY-MM-DD, not before assessment_date.",
    ),
)

COLUMN_NAMES: Final = tuple(c.name for c in COLUMNS)
_COLUMN_SET: Final = frozenset(COLUMN_NAMES)
REQUIRED_COLUMNS: Final = tuple(c.name for c in COLUMNS if c.required)

_CHILD_COLUMNS: Final = (
    "child_id",
    "national_id",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "district",
    "guardian_name",
    "guardian_phone",
)
_PLACEMENT_COLUMNS: Final = ("academic_year", "education_form", "institution")
#: Care columns -> CareSettingIn field names.
_CARE_COLUMNS: Final = {"care_setting": "care_setting", "care_since": "since"}
#: Assessment columns (they equal the AssessmentIn field names).
ASSESSMENT_COLUMNS: Final = (
    "assessment_date",
    "commission",
    "impairment_band",
    "icf_codes",
    "diagnoses",
    "functioning",
    "recommended_form",
    "supports",
    "accommodations",
    "next_review",
)
_DATE_COLUMNS: Final = frozenset({"date_of_birth", "care_since", "assessment_date", "next_review"})
_LIST_COLUMNS: Final = frozenset({"icf_codes", "diagnoses", "supports", "accommodations"})

#: (model part, model field) -> CSV column, for mapping pydantic errors back to the file.
_FIELD_COLUMN: Final[dict[tuple[str, str], str]] = {
    **{("child", c): c for c in _CHILD_COLUMNS},
    **{("placement", c): c for c in _PLACEMENT_COLUMNS},
    ("placement", "child_id"): "child_id",
    **{("care", f): c for c, f in _CARE_COLUMNS.items()},
    ("care", "child_id"): "child_id",
    **{("assessment", c): c for c in ASSESSMENT_COLUMNS},
    ("assessment", "child_id"): "child_id",
}
_PART_COLUMNS: Final[dict[str, dict[str, str]]] = {
    part: {field: col for (p, field), col in _FIELD_COLUMN.items() if p == part}
    for part in ("child", "placement", "care", "assessment")
}

#: What "missing" means for the conditionally required columns.
_MISSING: Final = {
    "care_since": "required when care_setting is given",
    "care_setting": "required when care_since is given",
    "assessment_date": "required when other assessment columns are given",
    "commission": "required when assessment_date is given",
}
#: Plain-words problems for pydantic pattern errors (the pattern itself is no help).
_PATTERN: Final = {
    "child_id": "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
    "national_id": "must be 5-20 capital letters or digits",
    "guardian_phone": "must be 5-32 digits, spaces, brackets or '-', with an optional leading '+'",
}
_DATE_RE: Final = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_COLUMN_ORDER: Final = {ROW: -1, **{name: i for i, name in enumerate(COLUMN_NAMES)}}
_ENCODING_PROBLEM: Final = "not valid UTF-8; save the file as UTF-8"


def format_help() -> str:
    """A compact column summary for the import command's ``--help`` text."""
    width = max(len(c.name) for c in COLUMNS) + 2
    lines = [
        "CSV, UTF-8, header row required, one row per child (* = required column):",
        *(
            f"  {(c.name + ('*' if c.required else '')).ljust(width)}{c.description}"
            for c in COLUMNS
        ),
        f"Empty cell = not given. Lists use '{LIST_SEPARATOR}'. Cells up to {MAX_CELL} characters.",
        "Full code lists (districts and more): docs/import-format.md",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- writing


def format_date(value: dt.date) -> str:
    """A date as the import format writes it (YYYY-MM-DD)."""
    return value.isoformat()


def format_list(values: Iterable[str]) -> str:
    """A list cell: entries separated by ';'."""
    return LIST_SEPARATOR.join(values)


def format_functioning(pairs: Iterable[tuple[str, str]]) -> str:
    """A functioning cell from (domain, level) pairs: 'domain=level;domain=level'."""
    return LIST_SEPARATOR.join(f"{d}{PAIR_SEPARATOR}{lvl}" for d, lvl in pairs)


def record_to_row(record: ImportRecord) -> dict[str, str]:
    """The CSV row of a record; :func:`iter_rows` reads it back to an equal record."""
    c, p = record.child, record.placement
    row = dict.fromkeys(COLUMN_NAMES, "")
    row.update(
        child_id=c.child_id,
        national_id=c.national_id or "",
        given_name=c.given_name,
        family_name=c.family_name,
        date_of_birth=format_date(c.date_of_birth),
        sex=c.sex,
        district=c.district,
        guardian_name=c.guardian_name or "",
        guardian_phone=c.guardian_phone or "",
        academic_year=p.academic_year,
        education_form=p.education_form,
        institution=p.institution or "",
    )
    if record.care is not None:
        row["care_setting"] = record.care.care_setting
        row["care_since"] = format_date(record.care.since)
    a = record.assessment
    if a is not None:
        row.update(
            assessment_date=format_date(a.assessment_date),
            commission=a.commission,
            impairment_band=a.impairment_band or "",
            icf_codes=format_list(a.icf_codes),
            diagnoses=format_list(a.diagnoses),
            functioning=format_functioning((f.domain, f.level) for f in a.functioning),
            recommended_form=a.recommended_form or "",
            supports=format_list(a.supports),
            accommodations=format_list(a.accommodations),
            next_review=format_date(a.next_review) if a.next_review else "",
        )
    return row


def write_rows(path: Path, rows: Iterable[Mapping[str, str]]) -> int:
    """Write an import file (UTF-8, header in :data:`COLUMNS` order); returns the row count.

    Missing keys are written as empty cells; a key that is not a column raises ValueError.
    """
    n = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMN_NAMES, restval="", extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            n += 1
    return n


# --------------------------------------------------------------------------- reading


def iter_rows(path: Path) -> Iterator[ImportRecord | list[Violation]]:
    """Yield one :class:`ImportRecord` or violation list per data row, in file order.

    A bad row yields *all* its violations, each with the row's first line number and the
    CSV column name. A file-level problem yields one violation list and nothing more.
    Rows whose cells are all empty are skipped; a header without rows yields nothing (a
    department may have no children to import). Streams: only a child_id -> line map is
    kept in memory.
    """
    bad_lines, long_lines = _scan_bytes(path)
    if bad_lines or long_lines:
        yield [Violation("encoding", _ENCODING_PROBLEM, n) for n in bad_lines] + [
            Violation("file", f"line is longer than {MAX_LINE_BYTES} bytes", n) for n in long_lines
        ]
        return
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header: list[str] | None = None
        header_line = 1
        while header is None:
            try:
                cells = next(reader)
            except StopIteration:
                yield [Violation("file", "the file is empty; the first line must be the header", 1)]
                return
            except csv.Error as exc:
                problem = f"header is not valid CSV ({_csv_problem(exc)})"
                yield [Violation("file", problem, header_line)]
                return
            if any(cell.strip() for cell in cells):
                header = cells
            else:
                header_line = reader.line_num + 1
        problems = _check_header(header, header_line)
        if problems:
            yield problems
            return
        names = [h.strip() for h in header]
        yield from _iter_data(reader, names)


def _iter_data(reader: Any, names: list[str]) -> Iterator[ImportRecord | list[Violation]]:
    seen: dict[str, int] = {}
    previous = reader.line_num
    while True:
        start = previous + 1
        try:
            cells: list[str] = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            previous = reader.line_num
            yield [Violation(ROW, f"not valid CSV ({_csv_problem(exc)})", start)]
            continue
        previous = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(names):
            yield [Violation(ROW, f"has {len(cells)} cells but the header has {len(names)}", start)]
            continue
        row = dict(zip(names, cells, strict=True))
        duplicate: Violation | None = None
        child_id = row["child_id"].strip()
        if child_id and len(row["child_id"]) <= MAX_CELL:
            first = seen.setdefault(child_id, start)
            if first != start:
                duplicate = Violation(
                    "child_id", f"duplicate child_id (first on line {first})", start
                )
        result = parse_row(row, start)
        if duplicate is not None:
            result = [duplicate, *([] if isinstance(result, ImportRecord) else result)]
        yield result


def parse_row(row: Mapping[str, str], line: int) -> ImportRecord | list[Violation]:
    """Validate one row (column name -> cell text) read from ``line`` of a file.

    Columns absent from ``row`` count as empty; a key that is not a column raises
    ValueError (a programming error, not bad input). Returns the record or every violation.
    """
    unknown = row.keys() - _COLUMN_SET
    if unknown:
        raise ValueError(f"not columns of the import format: {', '.join(sorted(unknown))}")
    problems: list[Violation] = []
    silenced: set[str] = set()  # columns already reported; later errors on them are noise
    values: dict[str, str] = {}
    for name, raw in row.items():
        if len(raw) > MAX_CELL:
            problems.append(Violation(name, f"longer than {MAX_CELL} characters", line))
            silenced.add(name)
        elif raw.strip():
            values[name] = raw.strip()

    def convert(name: str) -> Any:
        text = values[name]
        if name in _DATE_COLUMNS:
            return _parse_date(text)
        if name in _LIST_COLUMNS:
            return tuple(_split(text))
        if name == "functioning":
            pairs = [e.partition(PAIR_SEPARATOR) for e in _split(text)]
            malformed = [str(i) for i, (_, sep, _) in enumerate(pairs, 1) if not sep]
            if malformed:
                which = "entry" if len(malformed) == 1 else "entries"
                raise _CellError(
                    f"{which} {', '.join(malformed)} must look like domain{PAIR_SEPARATOR}level"
                )
            return tuple({"domain": d.strip(), "level": lvl.strip()} for d, _, lvl in pairs)
        return text

    data: dict[str, Any] = {}
    for name in list(values):
        try:
            data[name] = convert(name)
        except _CellError as exc:
            problems.append(Violation(name, str(exc), line))
            silenced.add(name)
    child_id = data.get("child_id")

    def part(columns: Mapping[str, str]) -> dict[str, Any]:
        out = {field: data[col] for col, field in columns.items() if col in data}
        if child_id is not None:
            out["child_id"] = child_id
        return out

    record: dict[str, Any] = {
        "line": line,
        "child": part({c: c for c in _CHILD_COLUMNS}),
        "placement": part({c: c for c in _PLACEMENT_COLUMNS}),
    }
    given = values.keys() | silenced
    if given & _CARE_COLUMNS.keys():
        record["care"] = part(_CARE_COLUMNS)
    if given & set(ASSESSMENT_COLUMNS):
        record["assessment"] = part({c: c for c in ASSESSMENT_COLUMNS})
    try:
        parsed = ImportRecord.model_validate(record)
    except ValidationError as exc:
        problems.extend(v for v in _violations(exc, line) if v.field not in silenced)
    else:
        if not problems:
            return parsed
    return _sorted_unique(problems)


class _CellError(ValueError):
    """A cell that cannot even be handed to the model; its message is public."""


def _parse_date(text: str) -> dt.date:
    if not _DATE_RE.match(text):
        raise _CellError("must be a date written YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _CellError("is not a real calendar date (YYYY-MM-DD)") from None


def _split(text: str) -> list[str]:
    return [x for e in text.split(LIST_SEPARATOR) if (x := e.strip())]


def _violations(exc: ValidationError, line: int) -> list[Violation]:
    out: list[Violation] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = err["loc"]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if len(loc) < 2:  # the record as a whole (or a whole part)
            column = _column_named_in(msg, _PART_COLUMNS.get(str(loc[0]), {})) if loc else None
            out.append(_model_level(column, msg, line))
            continue
        column = _FIELD_COLUMN.get((str(loc[0]), str(loc[1])), ROW)
        entry = next((p for p in loc[2:] if isinstance(p, int)), None)
        if err["type"] == "missing":
            msg = _MISSING.get(column, "required; the cell is empty")
        elif err["type"] == "string_pattern_mismatch" and column in _PATTERN:
            msg = _PATTERN[column]
        if entry is not None:
            msg = f"entry {entry + 1}: {msg}"
        out.append(Violation(column, msg, line))
    return out


def _column_named_in(msg: str, fields: Mapping[str, str]) -> str | None:
    hits = [(msg.find(f), col) for f, col in fields.items() if f in msg and f != "child_id"]
    return min(hits)[1] if hits else None


def _model_level(column: str | None, msg: str, line: int) -> Violation:
    if column is None:
        return Violation(ROW, msg, line)
    return Violation(column, msg.removeprefix(f"{column} "), line)


def _sorted_unique(problems: list[Violation]) -> list[Violation]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda v: _COLUMN_ORDER.get(v.field, len(_COLUMN_ORDER)))


def _check_header(header: list[str], line: int) -> list[Violation]:
    """Header problems. Names that are not column names are never echoed: when the header
    row is missing, the first line holds a child's data."""
    names = [h.strip() for h in header]
    if not any(name in COLUMN_NAMES for name in names):
        semicolons = len(names) == 1 and ";" in names[0]
        return [
            Violation(
                "file",
                "the header has one column containing ';'; separate columns with ',' "
                "(save as 'CSV UTF-8 (comma delimited)')"
                if semicolons
                else "the first line is not a header row: it names none of the columns "
                "(see docs/import-format.md)",
                line,
            )
        ]
    problems: list[Violation] = []
    first_at: dict[str, int] = {}
    for i, name in enumerate(names, 1):
        known = name in COLUMN_NAMES
        if not name:
            problems.append(Violation(f"column {i}", "the header cell is empty", line))
        elif name in first_at:
            where = name if known else f"column {i}"
            problems.append(Violation(where, f"repeats the name of column {first_at[name]}", line))
        elif not known:
            first_at[name] = i
            guess = difflib.get_close_matches(name.lower(), COLUMN_NAMES, n=1, cutoff=0.75)
            hint = f"did you mean {guess[0]}?" if guess else "see docs/import-format.md"
            problems.append(Violation(f"column {i}", f"unknown column name; {hint}", line))
        else:
            first_at[name] = i
    problems.extend(
        Violation(name, "required column is missing", line)
        for name in REQUIRED_COLUMNS
        if name not in first_at
    )
    return problems


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "field larger than field limit" in text:
        return f"a cell is far longer than {MAX_CELL} characters"
    if "new-line character" in text:
        return "a line break inside an unquoted cell"
    return "check the quoting"


def _scan_bytes(path: Path) -> tuple[list[int], list[int]]:
    """Line numbers that are not valid UTF-8, and lines too long to be a row (bounded memory)."""
    bad: list[int] = []
    long: list[int] = []
    line = 1
    decoder = codecs.getincrementaldecoder("utf-8")()
    ok, length = True, 0
    with path.open("rb") as f:
        while piece := f.readline(65536):
            ends = piece.endswith(b"\n")
            length += len(piece)
            if ok:
                try:
                    decoder.decode(piece, final=ends)
                except UnicodeDecodeError:
                    ok = False
            if ends:
                _finish_line(line, ok, length, bad, long)
                line += 1
                decoder.reset()
                ok, length = True, 0
        if length:
            if ok:
                try:
                    decoder.decode(b"", final=True)
                except UnicodeDecodeError:
                    ok = False
            _finish_line(line, ok, length, bad, long)
    return bad, long


def _finish_line(line: int, ok: bool, length: int, bad: list[int], long: list[int]) -> None:
    if not ok:
        bad.append(line)
    if length > MAX_LINE_BYTES:
        long.append(line)


def check_file(path: Path) -> tuple[int, list[Violation]]:
    """Validate a whole file without importing: (number of good rows, every violation)."""
    good = 0
    problems: list[Violation] = []
    for item in iter_rows(path):
        if isinstance(item, ImportRecord):
            good += 1
        else:
            problems.extend(item)
    return good, problems
