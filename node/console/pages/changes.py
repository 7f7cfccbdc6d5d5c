"""Placement (where a child is educated in an academic year) and care-setting changes.

Re-recording a year's placement or a care setting from the same date differently is a
correction: the registry then requires a reason, and the form shows the registry's
violation until one is given. One POST, one ``placement.record`` or ``care_setting.record``
leaf, as the gRPC RecordPlacement and RecordCareSetting make.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.responses import Response

from childreg import codes
from childreg.errors import Violation
from childreg.models import CareSettingIn, Model, PlacementIn, violations_of
from childreg.profile import current_academic_year
from childreg.search import Reason
from childreg.signed import canonical_json
from node.console.pages.forms import change_then_child, given, optional, options, render
from node.console.web import Page, Routes, form_values

routes = Routes()
PLACEMENT_FIELDS = ("academic_year", "education_form", "institution", "reason")
CARE_FIELDS = ("care_setting", "since", "reason")


class _Why(Model):
    """A change's reason (as the gRPC door validates it)."""

    reason: Reason | None = None


def _placement_form(page: Page, values: dict[str, Any], errors: list[Violation],
                    status: int = 200) -> Response:  # fmt: skip
    return render(page, "placement.html", status, title=page._("Record a placement"),
                  values=values, errors=errors,
                  forms=options(page, "education_form", codes.EDUCATION_FORMS))  # fmt: skip


def _care_form(page: Page, values: dict[str, Any], errors: list[Violation],
               status: int = 200) -> Response:  # fmt: skip
    return render(page, "care.html", status, title=page._("Change the care setting"),
                  values=values, errors=errors,
                  settings=options(page, "care_setting", codes.CARE_SETTINGS))  # fmt: skip


@routes.get("/child/{handle}/placement", access="change")
async def placement_form(page: Page) -> Response:
    """The placement form, for the current academic year by default."""
    page.child_id(str(page.request.path_params["handle"]))
    return _placement_form(page, {"academic_year": current_academic_year()}, [])


@routes.post("/child/{handle}/placement")
async def record_placement(page: Page) -> Response:
    """Record the placement; back to the child's page."""
    handle = str(page.request.path_params["handle"])
    child_id = page.child_id(handle)
    values = form_values(page.form, PLACEMENT_FIELDS)
    try:
        placement = PlacementIn.model_validate(given({
            "child_id": child_id, "academic_year": optional(page, "academic_year"),
            "education_form": optional(page, "education_form"),
            "institution": optional(page, "institution"),
        }))  # fmt: skip
        reason = _Why.model_validate({"reason": optional(page, "reason")}).reason
    except ValidationError as exc:
        return _placement_form(page, values, violations_of(exc), 400)
    registry = page.console.registry
    return await change_then_child(
        page,
        "placement.record",
        canonical_json({"placement": placement.model_dump(mode="json"), "reason": reason}),
        lambda: registry.record_placement(placement, reason=reason),
        child_id=child_id,
        form_again=lambda problems: _placement_form(page, values, problems, 400),
    )


@routes.get("/child/{handle}/care", access="change")
async def care_form(page: Page) -> Response:
    """The care-setting form."""
    page.child_id(str(page.request.path_params["handle"]))
    return _care_form(page, {}, [])


@routes.post("/child/{handle}/care")
async def record_care(page: Page) -> Response:
    """Record the care setting from a date on; back to the child's page."""
    handle = str(page.request.path_params["handle"])
    child_id = page.child_id(handle)
    values = form_values(page.form, CARE_FIELDS)
    try:
        care = CareSettingIn.model_validate(given({
            "child_id": child_id, "care_setting": optional(page, "care_setting"),
            "since": optional(page, "since"),
        }))  # fmt: skip
        reason = _Why.model_validate({"reason": optional(page, "reason")}).reason
    except ValidationError as exc:
        return _care_form(page, values, violations_of(exc), 400)
    registry = page.console.registry
    return await change_then_child(
        page,
        "care_setting.record",
        canonical_json({"care_setting": care.model_dump(mode="json"), "reason": reason}),
        lambda: registry.record_care_setting(care, reason=reason),
        child_id=child_id,
        form_again=lambda problems: _care_form(page, values, problems, 400),
    )
