"""The SQL of a count table: one GROUP BY over placements, from fixed fragments only.

Kept apart from the records' reads and writes because its SQL is assembled per question
(from fixed fragments chosen by the code lists of :mod:`childreg.codes`, never from input;
values are bound), and it is the place to read when a count table is slow: it is written
for the covering indexes of :mod:`node.store.migrations`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

from childreg import codes

_CARE_SQL: Final = (
    "COALESCE((SELECT s.care_setting FROM care_setting s WHERE s.child = p.child "
    "AND s.since <= :ref ORDER BY s.since DESC LIMIT 1), :care_none)"
)
_BAND_SQL: Final = (
    "COALESCE((SELECT a.impairment_band FROM assessment a INDEXED BY assessment_banded "
    "WHERE a.child = p.child AND a.impairment_band IS NOT NULL AND a.assessment_date <= :ref "
    "ORDER BY a.assessment_date DESC, a.assessment_id DESC LIMIT 1), :band_none)"
)
_SIMPLE_SQL: Final = {
    "education_form": "p.education_form",
    "sex": "c.sex",
    "district": "c.district",
    "region": "c.district",  # folded to regions in Python after grouping
}


def count_sql(
    academic_year: str, reference_date: dt.date, dimensions: Sequence[str]
) -> tuple[str, dict[str, str]]:
    """The GROUP BY query for a count table; SQL text only from fixed fragments."""
    params: dict[str, str] = {"year": academic_year, "ref": reference_date.isoformat()}
    columns: list[str] = []
    for dimension in dimensions:
        codes.codes(dimension)  # KeyError for an unknown dimension
        if dimension in _SIMPLE_SQL:
            columns.append(_SIMPLE_SQL[dimension])
        elif dimension == "care_setting":
            params["care_none"] = codes.CARE_NOT_RECORDED
            columns.append(_CARE_SQL)
        elif dimension == "impairment_band":
            params["band_none"] = codes.IMPAIRMENT_NOT_ASSESSED
            columns.append(_BAND_SQL)
        else:
            assert dimension == "age_band"
            columns.append(_age_band_sql(reference_date, params))
    needs_child = any(d in ("sex", "district", "region", "age_band") for d in dimensions)
    join = "JOIN child c INDEXED BY child_categories ON c.id = p.child " if needs_child else ""
    groups = ", ".join(str(i + 1) for i in range(len(columns)))
    sql = (
        f"SELECT {', '.join(columns)}, count(*) FROM placement p {join}"
        f"WHERE p.academic_year = :year AND NOT EXISTS (SELECT 1 FROM child_closure x "
        f"WHERE x.child = p.child AND x.closed_on <= :ref) GROUP BY {groups}"
    )
    return sql, params


def _age_band_sql(reference_date: dt.date, params: dict[str, str]) -> str:
    whens: list[str] = []
    for i, (code, earliest, latest) in enumerate(codes.age_band_birth_ranges(reference_date)):
        conditions: list[str] = []
        if earliest is not None:
            params[f"age{i}_from"] = earliest.isoformat()
            conditions.append(f"c.date_of_birth >= :age{i}_from")
        if latest is not None:
            params[f"age{i}_to"] = latest.isoformat()
            conditions.append(f"c.date_of_birth <= :age{i}_to")
        params[f"age{i}"] = code
        whens.append(f"WHEN {' AND '.join(conditions) or '1'} THEN :age{i}")
    return f"CASE {' '.join(whens)} ELSE :age0 END"
