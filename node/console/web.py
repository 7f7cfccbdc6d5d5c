"""How a console page is written: routes, access levels, CSRF, rendering, the actor.

Why one module: every page gets the same protections without repeating them. A page module
(node/console/pages/*.py) makes a :class:`Routes`, decorates its handlers with
``@routes.get(path, access=...)`` / ``@routes.post(...)``, and each handler takes a
:class:`Page` and returns a response. Before the handler runs, the wrapper here finds the
session, refuses what the access level does not allow (not signed in: to the sign-in
page; read-only on a changing route: 403), and on every POST parses the form and refuses
it without the session's CSRF token (403). Domain errors become an error page: the
message of a :class:`~childreg.errors.ChildregError` is public (it never holds personal
data), anything else is logged by type only and shown as "something went wrong".
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from childreg.errors import ChildregError, InvalidInput, NotFound, PermissionDenied
from childreg.i18n import gettext
from node.audit.actor import Actor
from node.console.accounts import ADMIN, CHANGERS
from node.console.sessions import MAX_CHILDREN, Session

if TYPE_CHECKING:
    from node.console.app import Console

log = structlog.get_logger("childreg.console")
T = TypeVar("T")

#: Who may use a route: anyone (the sign-in pages); someone who passed the password but
#: not yet the code; any signed-in person (reading); staff and admins (changing); admins.
Access = Literal["public", "half", "read", "change", "admin"]
COOKIE: Final = "__Host-childreg-session"
Handler = Callable[["Page"], Awaitable[Response]]
_STATUS: Final = {InvalidInput: 400, PermissionDenied: 403, NotFound: 404}


@dataclass(frozen=True)
class PageRoute:
    """One route of the console."""

    path: str
    methods: tuple[str, ...]
    access: Access
    handler: Handler


@dataclass
class Routes:
    """A page module's routes (collected by node/console/pages/__init__.py)."""

    routes: list[PageRoute] = field(default_factory=list)

    def get(self, path: str, *, access: Access = "read") -> Callable[[Handler], Handler]:
        """Register a GET handler."""
        return self._add(path, ("GET",), access)

    def post(self, path: str, *, access: Access = "change") -> Callable[[Handler], Handler]:
        """Register a POST handler (its form is parsed and its CSRF token checked first)."""
        return self._add(path, ("POST",), access)

    def _add(
        self, path: str, methods: tuple[str, ...], access: Access
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(PageRoute(path, methods, access, handler))
            return handler

        return register


class Page:
    """One request to a page: the request, the console, the session, the parsed form."""

    def __init__(self, request: Request, console: Console, session: Session) -> None:
        self.request = request
        self.console = console
        self.session = session
        self.form: FormData = FormData()
        self.new_session: Session | None = None  # set when the handler renewed the session

    @property
    def language(self) -> str:
        """The person's language."""
        return self.session.language

    def _(self, message: str) -> str:
        """``message`` in the person's language."""
        return gettext(self.language, message)

    def field(self, name: str) -> str:
        """A text field of the posted form ("" if absent)."""
        value = self.form.get(name)
        return value if isinstance(value, str) else ""

    @property
    def actor(self) -> Actor:
        """The signed-in person as the audit leaves name them."""
        if not self.session.verified:
            raise PermissionDenied("sign in first")
        return self.console.accounts.actor(self.session.login)

    @property
    def may_change(self) -> bool:
        """Whether the person's role may change records."""
        return self.session.verified and self.session.role in CHANGERS

    async def call(self, fn: Callable[[], T]) -> T:
        """Run a (blocking) domain call off the event loop."""
        return await run_in_threadpool(fn)

    def child_handle(self, child_id: str) -> str:
        """The handle a URL names a child by (random, 32 hex characters, this session's
        own: not the audit pseudonym, which the log shows), remembered in this session so
        :meth:`child_id` can turn it back; the same child keeps its handle."""
        child_id = child_id.strip()
        children = self.session.children
        handle = next((h for h, c in children.items() if c == child_id), None)
        if handle is None:
            handle = secrets.token_hex(16)
            children[handle] = child_id
            while len(children) > MAX_CHILDREN:
                children.popitem(last=False)
        children.move_to_end(handle)
        return handle

    def child_id(self, handle: str) -> str:
        """The child a handle of this session names (NotFound if it is not one)."""
        found = self.session.children.get(handle)
        if found is None:
            raise NotFound("open the child from a search first")
        return found

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        """A page from ``template`` (autoescaped, in the person's language)."""
        body = self.console.templates.render(self, template, values)
        return HTMLResponse(body, status_code=status)

    def redirect(self, path: str) -> RedirectResponse:
        """See other: ``path`` (after a POST, so a reload does not post again)."""
        return RedirectResponse(path, status_code=303)


def endpoint(console: Console, route: PageRoute) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of ``route``: session, access, CSRF, errors, cookie."""

    async def run(request: Request) -> Response:
        session = console.sessions.get(request.cookies.get(COOKIE))
        fresh = session is None
        if session is None:
            session = console.sessions.open(console.settings.language)
        page = Page(request, console, session)
        refused = _refused(page, route.access)
        if refused is not None:
            response: Response = refused
        else:
            response = await _handle(page, route)
        if page.new_session is not None:
            set_cookie(response, page.new_session.token)
        elif fresh:
            set_cookie(response, session.token)
        return response

    return run


def _refused(page: Page, access: Access) -> Response | None:
    session = page.session
    if access == "public":
        return None
    if access == "half":
        return None if session.login and not session.verified else page.redirect("/sign-in")
    if not session.verified:
        return page.redirect("/sign-in")
    held = page.console.accounts.role_of(session.login)
    if held is None or held[1] != session.changed_at:  # disabled or reset since signing in
        page.console.sessions.close(session.token)
        return page.redirect("/sign-in")
    role = held[0]
    session.role = role
    if (access == "change" and role not in CHANGERS) or (access == "admin" and role != ADMIN):
        return forbidden(page)
    return None


async def _handle(page: Page, route: PageRoute) -> Response:
    if page.request.method == "POST":
        page.form = await page.request.form()
        token = page.form.get("csrf")
        if not isinstance(token, str) or not hmac.compare_digest(token, page.session.csrf):
            log.warning("console.csrf_refused", path=route.path)
            return forbidden(page)
    try:
        return await route.handler(page)
    except ChildregError as exc:
        status = next((s for kind, s in _STATUS.items() if isinstance(exc, kind)), 409)
        return page.render("error.html", status, title=page._("Not done"), message=str(exc))
    except Exception as exc:
        log.error("console.failed", path=route.path, error=type(exc).__name__)
        return page.render("error.html", 500, title=page._("Not done"),
                           message=page._("Something went wrong."))  # fmt: skip


def forbidden(page: Page) -> Response:
    """The 403 page."""
    return page.render("error.html", 403, title=page._("Not allowed"),
                       message=page._("You may not do this."))  # fmt: skip


def set_cookie(response: Response, token: str) -> None:
    """The session cookie: Secure, HttpOnly, SameSite=Strict, host-only (``__Host-``)."""
    response.set_cookie(COOKIE, token, path="/", secure=True, httponly=True, samesite="strict")


def form_values(form: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    """The named text fields of a form (for re-showing it after an error)."""
    return {name: str(form.get(name) or "") for name in names}
