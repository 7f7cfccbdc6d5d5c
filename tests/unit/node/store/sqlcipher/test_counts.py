"""The SQL of a count table (node/store/sqlcipher/counts.py) runs on the covering indexes."""

from __future__ import annotations

import datetime as dt

from node.store.sqlcipher import SqlCipherStore
from node.store.sqlcipher.counts import count_sql


def test_count_table_uses_the_covering_indexes(store: SqlCipherStore) -> None:
    """The count query searches placements by year and children by covering index, no scans."""
    sql, params = count_sql(
        "2023/24",
        dt.date(2023, 9, 15),
        ["age_band", "care_setting", "impairment_band", "region"],
    )
    plan = " | ".join(r[3] for r in store._conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert "SEARCH p USING PRIMARY KEY (academic_year=?)" in plan
    assert "COVERING INDEX child_categories" in plan
    assert "COVERING INDEX assessment_banded" in plan
    assert "SCAN" not in plan
