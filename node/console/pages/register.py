"""Registering a child, through the duplicate warning.

The first POST asks the registry to register the child; when children already held look
like it, nothing is written and the page shows them (each opens the existing record), and
the person either opens one or confirms with a reason why the child is none of them (a
second POST carrying the same values and the reason). Each POST is one ``child.register``
leaf with the purpose the gRPC RegisterChild gives it ("duplicates-shown", "not-duplicate"
or none: :func:`node.rpc.records.registration_purpose`, the same rule).
"""

from __future__ import annotations

from pydantic import ValidationError
from starlette.responses import Response

from childreg import codes
from childreg.errors import InvalidInput, Violation
from childreg.models import ChildIn, violations_of
from childreg.search import DuplicateCandidate, Registration
from childreg.signed import canonical_json
from node.audit.service import Learnt
from node.console.pages.forms import districts, given, options, render
from node.console.web import Page, Routes, form_values
from node.rpc.records import registration_purpose

routes = Routes()
FIELDS = (
    "child_id", "given_name", "family_name", "date_of_birth", "sex", "district",
    "national_id", "guardian_name", "guardian_phone",
)  # fmt: skip


def _form(
    page: Page,
    values: dict[str, str],
    errors: list[Violation],
    status: int = 200,
    duplicates: list[tuple[str, DuplicateCandidate]] | None = None,
    *,
    confirming: bool = False,
) -> Response:
    return render(
        page,
        "register.html",
        status,
        title=page._("Register a child"),
        values=values,
        errors=errors,
        duplicates=duplicates,
        confirming=confirming or bool(duplicates),
        sexes=options(page, "sex", codes.SEXES),
        districts=districts(page),
    )


@routes.get("/register", access="change")
async def register_form(page: Page) -> Response:
    """The empty registration form."""
    return _form(page, {}, [])


@routes.post("/register")
async def register(page: Page) -> Response:
    """Register, or show the likely duplicates and ask for a reason."""
    values = form_values(page.form, FIELDS)
    confirming = page.field("confirm") == "1"
    reason = page.field("not_duplicate_reason").strip() or None
    if confirming and reason is None:
        problem = Violation("not_duplicate_reason", "say why this child is none of those shown")
        return _form(page, values, [problem], 400, confirming=True)
    try:
        child = ChildIn.model_validate(given({k: v.strip() for k, v in values.items()}))
    except ValidationError as exc:
        return _form(page, values, violations_of(exc), 400)
    registry, audited, actor = page.console.registry, page.console.audited, page.actor
    why = reason if confirming else None

    def run(learnt: Learnt) -> Registration:
        done = registry.register_child(child, not_duplicate_reason=why)
        learnt.purpose = registration_purpose(done, why)
        return done

    request = canonical_json(
        {"register": child.model_dump(mode="json"), "not_duplicate_reason": why}
    )
    try:
        done = await page.call(
            lambda: audited.learning(
                actor, "child.register", request, run, Learnt(child_id=child.child_id)
            )
        )
    except InvalidInput as exc:
        return _form(page, values, exc.violations, 400)
    if not done.registered:
        shown = [(page.child_handle(d.hit.child_id), d) for d in done.duplicates]
        return _form(page, values, [], 200, shown)
    return page.redirect(f"/child/{page.child_handle(child.child_id)}")
