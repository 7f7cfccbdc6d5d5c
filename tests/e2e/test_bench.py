"""`childreg bench --quick` runs end to end and reports every figure against its baseline."""

from __future__ import annotations

import json

from tests.e2e.conftest import cli


def test_quick_bench_reports_the_three_figures() -> None:
    """Import ratio, national-table ratios at two federation sizes, and node memory are reported."""
    result = cli("bench", "--quick", "--json", timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    imp = data["import"]
    assert imp["node_import_per_second"] > 0
    assert imp["raw_sqlcipher_insert_per_second"] > 0
    assert imp["ratio"] == round(
        imp["node_import_per_second"] / imp["raw_sqlcipher_insert_per_second"], 3
    )
    tables = data["national_table"]
    assert {row["departments"] for row in tables} == {3, 5}
    assert all(row["federated_ms"] > 0 and row["central_group_by_ms"] > 0 for row in tables)
    assert data["memory"]["peak_node_mb"] >= data["memory"]["idle_node_mb"] > 0
