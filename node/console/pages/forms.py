"""What the record-changing pages share: code lists with their names in the person's
language, reading optional fields, and the audited call with the form's canonical request.

Why: the register, assessment, placement, care-setting, correction, closing, consent,
import, emergency-access and counts pages all show code lists (names from the country
profile, :meth:`childreg.profile.Profile.code_name`) and all make one audit leaf the way
the gRPC servicers do; one place keeps them alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from starlette.responses import HTMLResponse, Response

from childreg.errors import InvalidInput, Violation
from childreg.profile import active
from node.console.web import Page

#: The values of an optional field left empty.
EMPTY = ("", None)


def code_name(page: Page) -> Callable[[str, str], str]:
    """``name(list, code)``: a code's name in the person's language (the code itself where
    the country profile names none)."""
    profile = active()
    return lambda code_list, code: profile.code_name(code_list, code, page.language)


def options(page: Page, code_list: str, codes: Iterable[str]) -> list[tuple[str, str]]:
    """(code, name) pairs for a select, in the code list's order."""
    name = code_name(page)
    return [(c, name(code_list, c)) for c in codes]


def optional(page: Page, name: str) -> str | None:
    """A text field of the form, trimmed; None when left empty."""
    value = page.field(name).strip()
    return value or None


def given(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the fields left empty (so the model's defaults apply)."""
    return {k: v for k, v in values.items() if v not in EMPTY and v != ()}


def render(page: Page, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """``page.render`` with ``code(list, code)`` (code names) and ``handle`` when routed by
    a child's handle."""
    handle = page.request.path_params.get("handle", "")
    return page.render(template, status, code=code_name(page), handle=handle, **values)


def districts(page: Page) -> list[tuple[str, str]]:
    """(code, name) of every district of the country profile, region by region, named in
    the person's language."""
    profile = active()
    return [
        (d.code, profile.name_in(d.names, page.language))
        for region in profile.regions
        for d in region.districts
    ]


async def change_then_child(
    page: Page,
    action: str,
    request: bytes,
    do: Callable[[], object],
    *,
    child_id: str,
    form_again: Callable[[list[Violation]], Response],
) -> Response:
    """One audited change of the child (``action``, one leaf naming the person), then back
    to the child's page; the form again with the registry's problems if it refuses."""
    audited, actor = page.console.audited, page.actor
    try:
        await page.call(lambda: audited.change(actor, action, request, do, child_id))
    except InvalidInput as exc:
        return form_again(list(exc.violations))
    return page.redirect(f"/child/{page.request.path_params['handle']}")
