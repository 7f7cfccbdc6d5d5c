"""Emergency access (break-glass): a person reads a child's record they could not find
otherwise, giving a reason that is kept sealed with the child's key.

The child is named by its record id in the form body (never in a URL); one POST, one
``breakglass.read`` leaf with purpose "emergency" and the access's id as its grant, exactly
as the gRPC BreakGlassRead makes. The record is shown on the answer page, once.
"""

from __future__ import annotations

from starlette.responses import Response

from childreg.errors import InvalidInput
from childreg.signed import canonical_json
from node.consent.breakglass import BreakGlassDesk, new_breakglass_id
from node.console.pages.forms import render
from node.console.web import Page, Routes, form_values

routes = Routes()
FIELDS = ("child_id", "reason")


@routes.get("/emergency", access="change")
async def emergency_form(page: Page) -> Response:
    """The emergency-access form."""
    return render(page, "emergency.html", title=page._("Emergency access"), values={},
                  errors=[], view=None)  # fmt: skip


@routes.post("/emergency")
async def emergency(page: Page) -> Response:
    """Read the record with its reason kept; show it."""
    values = form_values(page.form, FIELDS)
    console, actor = page.console, page.actor
    desk = BreakGlassDesk(console.store, console.keyring, console.registry)
    ident, child_id, reason = new_breakglass_id(), values["child_id"].strip(), values["reason"]
    request = canonical_json({"breakglass": {"child_id": child_id, "reason": reason}})
    try:
        view = await page.call(
            lambda: console.audited.change(
                actor,
                "breakglass.read",
                request,
                lambda: desk.read(child_id, reason, actor.name, ident),
                child_id,
                purpose="emergency",
                grant=ident,
            )
        )
    except InvalidInput as exc:
        return render(page, "emergency.html", 400, title=page._("Emergency access"),
                      values=values, errors=exc.violations, view=None)  # fmt: skip
    return render(page, "emergency.html", title=page._("Emergency access"), values={},
                  errors=[], view=view, opened=page.child_handle(child_id))  # fmt: skip
