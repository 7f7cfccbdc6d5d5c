"""bench (h) and (i) at a tiny size: the figures are there and consistent with each other."""

from __future__ import annotations

from pathlib import Path

from tools.dev.bench_search import measure_search_figures


def test_search_figures_are_reported(tmp_path: Path) -> None:
    """A node of 300 children gives positive timings, their ratios, and the goals."""
    got = measure_search_figures(tmp_path, 300, 10, 5, lambda _: None)
    search, reg = got["search"], got["registration_check"]
    assert search["children"] == reg["children"] == 300
    assert search["search_p95_ms"] >= search["search_p50_ms"] > 0
    assert search["get_child_p95_ms"] > 0
    assert search["goal_p95_ms"] == 20
    assert 0 <= search["found_with_birth_date"] <= 1
    assert reg["with_check_p50_ms"] > 0
    assert reg["without_check_p50_ms"] > 0
    assert reg["goal_max_ratio"] == 2
