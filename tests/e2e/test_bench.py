"""`childreg bench --quick` runs end to end and reports every figure against its baseline."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.conftest import cli


def test_quick_bench_reports_the_three_figures() -> None:
    """Import ratio, published-table ratios (first computation and repeat, against the exact
    count) at two federation sizes, and node memory are reported."""
    result = cli("bench", "--quick", "--json", timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    imp = data["import"]
    assert imp["node_import_per_second"] > 0
    assert imp["raw_sqlcipher_insert_per_second"] > 0
    measured = imp["node_import_per_second"] / imp["raw_sqlcipher_insert_per_second"]
    assert imp["ratio"] == pytest.approx(measured, abs=0.001)  # of rounded rates
    assert len(imp["ratios"]) == imp["runs"] == 2
    assert imp["ratio_min"] <= imp["ratio"] <= imp["ratio_max"]
    assert sorted(imp["ratios"])[0] == imp["ratio_min"]
    assert imp["guard_min_ratio"] == 0.2
    tables = data["national_table"]
    assert {row["departments"] for row in tables} == {3, 5}
    assert {tuple(row["dimensions"]) for row in tables} == {
        ("education_form",),
        ("education_form", "sex"),
        ("care_setting", "age_band"),
    }
    for row in tables:
        assert row["first_ms"] > 0
        assert row["repeat_ms"] > 0
        assert row["exact_count_ms"] > 0
        assert row["central_group_by_ms"] > 0
        assert row["first_ratio"] > 0
        assert row["repeat_ratio"] > 0
    assert data["search"]["search_p95_ms"] > 0
    assert data["registration_check"]["ratio"] > 0
    receipts = data["receipts"]
    assert receipts["samples"] == 10
    assert receipts["pdf_p95_ms"] > 0
    assert receipts["html_p95_ms"] > 0
    assert receipts["goal_pdf_p95_ms"] == 1000.0
    web = data["console"]
    assert web["children"] == 500
    for page in ("search", "child", "register"):
        assert web[f"{page}_console_p95_ms"] > 0
        assert web[f"{page}_grpc_p95_ms"] > 0
    kek = data["kek_rotation"]
    assert kek["children"] == 500
    assert kek["seconds"] > 0
    assert kek["goal_seconds_for_100000"] == 30.0
    backup = data["backup"]
    assert backup["children"] == 500
    assert backup["backup_ratio"] > 0
    assert backup["restore_seconds"] > 0
    assert backup["goal_max_backup_ratio"] == 3.0
    drop = data["dropout_rounds"]
    assert [c["departments"] for c in drop["coordinator"]] == [5, 10]
    assert all(c["coordinator_round_ms"] > 0 for c in drop["coordinator"])
    assert drop["one_down"]["departments"] == 5
    assert drop["one_down"]["ratio"] > 0
    rounds = data["secure_rounds"]
    assert {(row["departments"], tuple(row["dimensions"])) for row in rounds} == {
        (n, dims) for n in (3, 5) for dims in {tuple(r["dimensions"]) for r in tables}
    }
    for row in rounds:
        assert row["secure_round_ms"] > 0
        assert row["stage1_round_ms"] > 0
        measured = row["secure_round_ms"] / row["stage1_round_ms"]  # of rounded timings
        assert row["ratio"] == pytest.approx(measured, rel=0.05)
    memory = data["memory"]
    assert memory["peak_node_with_workers_pss_mb"] >= memory["idle_node_mb"] > 0
    assert memory["peak_node_mb"] == max(
        memory["peak_node_process_rss_mb"], memory["peak_node_with_workers_pss_mb"]
    )
    assert memory["import_workers"] == (2 if len(os.sched_getaffinity(0)) >= 2 else 0)
    appends = data["audit_appends"]
    assert appends["audit_appends_per_second"] > 0
    assert appends["raw_durable_inserts_per_second"] > 0
    proofs = data["audit_proofs"]
    assert proofs["leaves"] == 10_000
    assert proofs["proof_verifies"] is True
    assert proofs["inclusion_proof_ms"] > 0
    extracts = data["extracts"]
    assert extracts["requests"] == 30
    assert extracts["extract_p99_ms"] >= extracts["extract_p50_ms"] > 0
    assert extracts["commit_p99_ms"] > 0
    assert extracts["rpc_floor_p99_ms"] >= extracts["rpc_floor_p50_ms"] > 0
    assert extracts["bare_grpc_floor_p99_ms"] >= extracts["bare_grpc_floor_p50_ms"] > 0
    assert extracts["bare_grpc_floor_p99_ratio"] > 0
