"""The department's own exact counts by form of education and care setting.

Exact internal counts of this node's own records (the store's ``count_table``, as a
statistics round counts before any noise), for one academic year (the current one by
default) at its census day; not published statistics, which only the coordinator's
differentially private tables are. Reading them is one ``statistics.count`` leaf.
"""

from __future__ import annotations

from pydantic import ValidationError
from starlette.responses import Response

from childreg import codes
from childreg.errors import Violation
from childreg.models import AcademicYear, Model, violations_of
from childreg.profile import current_academic_year
from childreg.signed import canonical_json
from node.console.pages.forms import options, render
from node.console.web import Page, Routes

routes = Routes()
DIMENSIONS = ("education_form", "care_setting")


class _Year(Model):
    academic_year: AcademicYear


@routes.get("/counts")
async def counts(page: Page) -> Response:
    """The counts of an academic year (``?academic_year=2026/27``; the current by default)."""
    asked = page.request.query_params.get("academic_year") or current_academic_year()
    try:
        year = _Year.model_validate({"academic_year": asked}).academic_year
    except ValidationError as exc:
        return _page(page, asked, None, violations_of(exc), 400)
    store, audited, actor = page.console.store, page.console.audited, page.actor
    request = canonical_json({"counts": {"academic_year": year, "dimensions": DIMENSIONS}})
    day = codes.reference_date(year)
    table = await page.call(
        lambda: audited.disclose(
            actor, "statistics.count", request, lambda: store.count_table(year, day, DIMENSIONS)
        )
    )
    return _page(page, year, table, [])


def _page(page: Page, year: str, table: dict[tuple[str, ...], int] | None,
          errors: list[Violation], status: int = 200) -> Response:  # fmt: skip
    forms = options(page, "education_form", codes.EDUCATION_FORMS)
    cares = options(page, "care_setting", (*codes.CARE_SETTINGS, codes.CARE_NOT_RECORDED))
    cells = table or {}
    rows = [
        (shown, [cells.get((form, care), 0) for care, _ in cares],
         sum(cells.get((form, care), 0) for care, _ in cares))
        for form, shown in forms
    ]  # fmt: skip
    totals = [sum(cells.get((form, care), 0) for form, _ in forms) for care, _ in cares]
    return render(page, "counts.html", status, title=page._("Our exact counts"), year=year,
                  rows=rows, cares=cares, totals=totals, total=sum(totals), errors=errors,
                  shown=table is not None,
                  census=codes.reference_date(year) if table is not None else None)  # fmt: skip
