"""The console's pages, one module per page group; a new module adds its ``routes`` here."""

from __future__ import annotations

from node.console.pages import (
    admin,
    assessment,
    changes,
    child,
    consents,
    correct,
    counts,
    emergency,
    imports,
    register,
    search,
    signin,
)
from node.console.web import PageRoute

ROUTES: tuple[PageRoute, ...] = (
    *signin.routes.routes,
    *search.routes.routes,
    *child.routes.routes,
    *admin.routes.routes,
    *register.routes.routes,
    *assessment.routes.routes,
    *changes.routes.routes,
    *correct.routes.routes,
    *consents.routes.routes,
    *imports.routes.routes,
    *emergency.routes.routes,
    *counts.routes.routes,
)
