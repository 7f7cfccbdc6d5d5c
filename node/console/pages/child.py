"""A child's page: the record, assessments, placements by year, care-setting history,
consents, the history of changes and who accessed the record.

Addressed by the child's handle (its audit pseudonym, known to this session from a search),
never by an id or a name. Opening it is one ``child.read`` leaf (purpose
``console.child``) naming the child, appended before the page is returned (write-ahead);
the "who accessed" list is read from the node's own log, so it lists the accesses before
this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from childreg.audit.leaf import AuditEvent
from childreg.history import ChildHistory
from childreg.models import ChildView
from childreg.signed import canonical_json
from node.console.web import Page, Routes
from node.store.types import StoredConsent

routes = Routes()
PURPOSE = "console.child"


@dataclass(frozen=True)
class ChildPage:
    """Everything the child's page shows."""

    view: ChildView
    history: ChildHistory
    consents: tuple[StoredConsent, ...]
    accesses: tuple[AuditEvent, ...]


def read_child_page(page: Page, child_id: str) -> ChildPage:
    """Read the child's page with its one leaf (blocking: call it through ``page.call``)."""
    console = page.console

    def read() -> ChildPage:
        view = console.registry.get_child(child_id)
        subject = console.keyring.pseudonym(child_id)
        return ChildPage(
            view,
            console.registry.history(child_id),
            tuple(console.consents.list(child_id)),
            tuple(console.audited.log.events_about(subject)),
        )

    request = canonical_json({"page": "child", "child_id": child_id})
    return console.audited.disclose(page.actor, "child.read", request, read, child_id,
                                    purpose=PURPOSE)  # fmt: skip


@routes.get("/child/{handle}")
async def child(page: Page) -> Response:
    """The child's page."""
    child_id = page.child_id(str(page.request.path_params["handle"]))
    shown = await page.call(lambda: read_child_page(page, child_id))
    years = sorted(shown.view.placements, key=lambda p: p.academic_year, reverse=True)
    care = sorted(shown.view.care_settings, key=lambda c: c.since, reverse=True)
    assessments = sorted(shown.view.assessments, key=lambda a: a.assessment_date, reverse=True)
    return page.render(
        "child.html",
        title=page._("Child record"),
        handle=page.request.path_params["handle"],
        shown=shown,
        child=shown.view.child,
        placements=years,
        care_settings=care,
        assessments=assessments,
    )
