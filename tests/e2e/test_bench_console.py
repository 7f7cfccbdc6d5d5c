"""The console benchmark (tools/dev/bench_console.py) against a real node: each page and
its gRPC call are measured, and each ratio is the console's p95 ÷ the gRPC p95."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.dev.bench_console import GOAL_RATIO, measure_console


def test_measure_console_reports_each_page_against_its_grpc_call(tmp_path: Path) -> None:
    """On a small node, the three pages and their gRPC calls have p95s and ratios of them."""
    result = measure_console(tmp_path, 200, 4, lambda _: None)
    assert (result["children"], result["requests"]) == (200, 4)
    for page in ("search", "child", "register"):
        web, rpc = result[f"{page}_console_p95_ms"], result[f"{page}_grpc_p95_ms"]
        assert web > 0
        assert rpc > 0
        assert result[f"{page}_ratio"] == pytest.approx(web / rpc, rel=0.05)
    assert result["goal_max_ratio"] == GOAL_RATIO
