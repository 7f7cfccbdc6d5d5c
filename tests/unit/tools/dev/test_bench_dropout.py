"""The dropout-round benchmark (tools/dev/bench_dropout.py) runs and reports consistently."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.dev.bench_dropout import GOAL_DOWN_RATIO, GOAL_SCALING_RATIO, measure_dropout_rounds


def test_the_dropout_bench_reports_every_size_and_the_one_down_ratio(tmp_path: Path) -> None:
    """At 5 and 10 in-process departments the report has the coordinator's time per size,
    the threshold, a one-down round over the smallest size and ratios of its own figures."""
    said: list[str] = []
    result = measure_dropout_rounds(tmp_path, (5, 10), 1, said.append)
    sizes = [c["departments"] for c in result["coordinator"]]
    assert sizes == [5, 10]
    assert [c["threshold"] for c in result["coordinator"]] == [4, 8]
    assert all(c["coordinator_round_ms"] > 0 for c in result["coordinator"])
    one = result["one_down"]
    assert one["departments"] == 5
    assert one["ratio"] == pytest.approx(one["one_down_ms"] / one["none_down_ms"], rel=0.05)
    assert one["goal_max_ratio"] == GOAL_DOWN_RATIO
    scaling = result["scaling"]
    assert (scaling["from_departments"], scaling["to_departments"]) == (5, 10)
    assert scaling["goal_max_ratio"] == GOAL_SCALING_RATIO
    assert len(said) == 2
