"""The receipt benchmark (tools/dev/bench_receipts.py): both renders measured, their ratio."""

from __future__ import annotations

import pytest

from tools.dev.bench_receipts import GOAL_PDF_MS, measure_receipts


def test_measure_receipts_reports_html_and_pdf_p95_and_their_ratio() -> None:
    """Both p95s are positive, the ratio is PDF ÷ HTML of them, the goal is stated."""
    result = measure_receipts(3)
    assert result["samples"] == 3
    assert result["html_p95_ms"] > 0
    assert result["pdf_p95_ms"] > 0
    measured = result["pdf_p95_ms"] / result["html_p95_ms"]
    assert result["ratio"] == pytest.approx(measured, rel=0.05)
    assert result["goal_pdf_p95_ms"] == GOAL_PDF_MS
    assert result["meets_goal"] == (result["pdf_p95_ms"] <= GOAL_PDF_MS)
