"""Correcting a child's record with a reason, and closing it (with a reason and a date).

The correction form asks only for the fields to change (empty: unchanged), so opening it
discloses nothing; the old values stay in the child's history. One POST, one
``child.correct`` or ``child.close`` leaf, as the gRPC CorrectChild and CloseChild make.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.responses import Response

from childreg import codes
from childreg.errors import Violation
from childreg.history import CORRECTABLE, Closure, Correction
from childreg.models import violations_of
from childreg.signed import canonical_json
from node.console.pages.forms import change_then_child, districts, given, optional, options, render
from node.console.web import Page, Routes, form_values

routes = Routes()
CLEARABLE = ("national_id", "guardian_name", "guardian_phone")
CLOSE_FIELDS = ("closed_on", "close_reason", "note")


def _correct_form(page: Page, values: dict[str, Any], errors: list[Violation],
                  status: int = 200) -> Response:  # fmt: skip
    return render(page, "correct.html", status, title=page._("Correct the record"),
                  values=values, errors=errors, clearable=CLEARABLE,
                  sexes=options(page, "sex", codes.SEXES),
                  districts=districts(page))  # fmt: skip


def _close_form(page: Page, values: dict[str, Any], errors: list[Violation],
                status: int = 200) -> Response:  # fmt: skip
    return render(page, "close.html", status, title=page._("Close the record"),
                  values=values, errors=errors,
                  reasons=options(page, "close_reason", codes.CLOSE_REASONS))  # fmt: skip


@routes.get("/child/{handle}/correct", access="change")
async def correct_form(page: Page) -> Response:
    """The correction form (empty: only what changes is entered)."""
    page.child_id(str(page.request.path_params["handle"]))
    return _correct_form(page, {"clear": []}, [])


@routes.post("/child/{handle}/correct")
async def correct(page: Page) -> Response:
    """Correct the record; back to the child's page."""
    handle = str(page.request.path_params["handle"])
    child_id = page.child_id(handle)
    values: dict[str, Any] = form_values(page.form, (*CORRECTABLE, "reason"))
    values["clear"] = page.form.getlist("clear")
    data = given({f: optional(page, f) for f in CORRECTABLE})
    try:
        correction = Correction.model_validate({
            **data, "child_id": child_id, "reason": page.field("reason").strip(),
            "clear": tuple(values["clear"]),
        })  # fmt: skip
    except ValidationError as exc:
        return _correct_form(page, values, violations_of(exc), 400)
    registry = page.console.registry
    return await change_then_child(
        page,
        "child.correct",
        canonical_json({"correction": correction.model_dump(mode="json")}),
        lambda: registry.correct_child(correction),
        child_id=child_id,
        form_again=lambda problems: _correct_form(page, values, problems, 400),
    )


@routes.get("/child/{handle}/close", access="change")
async def close_form(page: Page) -> Response:
    """The closing form."""
    page.child_id(str(page.request.path_params["handle"]))
    return _close_form(page, {}, [])


@routes.post("/child/{handle}/close")
async def close(page: Page) -> Response:
    """Close the record from a date on; back to the child's page."""
    handle = str(page.request.path_params["handle"])
    child_id = page.child_id(handle)
    values = form_values(page.form, CLOSE_FIELDS)
    try:
        closure = Closure.model_validate(given({
            "child_id": child_id, "closed_on": optional(page, "closed_on"),
            "reason": optional(page, "close_reason"), "note": optional(page, "note"),
        }))  # fmt: skip
    except ValidationError as exc:
        return _close_form(page, values, violations_of(exc), 400)
    registry = page.console.registry
    return await change_then_child(
        page,
        "child.close",
        canonical_json({"closure": closure.model_dump(mode="json")}),
        lambda: registry.close_child(closure),
        child_id=child_id,
        form_again=lambda problems: _close_form(page, values, problems, 400),
    )
