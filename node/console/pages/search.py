"""Finding a child: by name (misspelt, or in the other script), date of birth, district,
school or national id, through the registry's blind index (node/records/search.py).

The search is a form POST, so what was searched for never appears in a URL; the results
link to each child's page by its handle (node/console/web.py). One ``child.search`` leaf
per search, exactly as the gRPC FindChildren makes.
"""

from __future__ import annotations

from pydantic import ValidationError
from starlette.responses import Response

from childreg.errors import InvalidInput
from childreg.models import violations_of
from childreg.search import SearchPage, SearchQuery
from childreg.signed import canonical_json
from node.audit.service import Learnt
from node.console.web import Page, Routes, form_values

routes = Routes()
FIELDS = ("name", "date_of_birth", "district", "school", "national_id")


@routes.get("/search")
async def search_form(page: Page) -> Response:
    """The empty search form."""
    return page.render("search.html", title=page._("Find a child"), values={}, hits=None,
                       errors=[])  # fmt: skip


@routes.post("/search", access="read")
async def search(page: Page) -> Response:
    """Search, and show the children found."""
    values = form_values(page.form, FIELDS)
    asked = {k: v.strip() for k, v in values.items() if v.strip()}
    include_closed = page.field("include_closed") == "on"
    try:
        query = SearchQuery.model_validate({**asked, "include_closed": include_closed})
    except ValidationError as exc:
        return page.render("search.html", 400, title=page._("Find a child"), values=values,
                           hits=None, errors=violations_of(exc))  # fmt: skip
    registry, audited, actor = page.console.registry, page.console.audited, page.actor

    def find(learnt: Learnt) -> SearchPage:
        found = registry.find_children(query)
        learnt.child_id = found.hits[0].child_id if len(found.hits) == 1 else None
        return found

    request = canonical_json({"search": query.model_dump(mode="json")})
    try:
        found = await page.call(lambda: audited.disclosing(actor, "child.search", request, find))
    except InvalidInput as exc:
        return page.render("search.html", 400, title=page._("Find a child"), values=values,
                           hits=None, errors=exc.violations)  # fmt: skip
    hits = [(page.child_handle(h.child_id), h) for h in found.hits]
    return page.render("search.html", title=page._("Find a child"), values=values, hits=hits,
                       errors=[], include_closed=include_closed)  # fmt: skip
