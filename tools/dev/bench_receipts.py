"""`childreg bench`, the guardian's receipt: what the PDF adds to a consent's grant.

(k) The p95 of rendering one grant receipt as HTML from its template (node/receipts, in
    Azerbaijani, names from a directory) and the p95 of rendering that page as PDF with
    WeasyPrint, fonts embedded: what ``GrantConsent`` spends on the receipt after its
    transaction commits. Baseline: the HTML render in the same run; the ratio is PDF ÷
    HTML. Goal: the PDF p95 ≤ 1 s, so staff at the desk hardly wait for the printout.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable
from typing import Any, Final

from childreg.profile import embedded
from node.consent.receipts import DepartmentReceipts
from node.receipts.render import html_to_pdf
from node.store.base import StoredConsent
from tools.dev.directory import with_directory

GOAL_PDF_MS: Final = 1000.0


def _p95_ms(fn: Callable[[], object], samples: int) -> float:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]


def measure_receipts(samples: int) -> dict[str, Any]:
    """Render one grant receipt ``samples`` times as HTML and as PDF; both p95s in ms."""
    country = with_directory(embedded(), [("baku", "baku")], [("school-17", "nasimi")])
    receipts = DepartmentReceipts("baku", profile=lambda: country)
    consent = StoredConsent(
        consent_id="cns_" + "0" * 32,
        child_id="C1",
        purpose="iep_preparation",
        school="spiffe://az.childreg/school/school-17",
        valid_from=dt.date(2025, 3, 1),
        valid_until=dt.date(2026, 2, 28),
        evidence_ref="folder 12",
        granted_at=dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC),
        granted_by="bench",
        grant_hash=bytes(32),
        sealed_guardian=b"",
    )

    def html() -> str:
        return receipts.consent(consent, "Zülfiyyə Şükürova", "grant", "az").html

    page = html()
    html_to_pdf(page)  # warm-up: WeasyPrint's import and font discovery happen once
    html_ms = _p95_ms(html, samples)
    pdf_ms = _p95_ms(lambda: html_to_pdf(page), samples)
    return {
        "samples": samples,
        "html_p95_ms": round(html_ms, 2),
        "pdf_p95_ms": round(pdf_ms, 1),
        "ratio": round(pdf_ms / html_ms, 1),
        "goal_pdf_p95_ms": GOAL_PDF_MS,
        "meets_goal": pdf_ms <= GOAL_PDF_MS,
    }
