"""The console's Starlette application: its collaborators, templates, headers and routes.

Why: one place builds the web application from the node's own domain objects (the same
Registry, Audited service and store the gRPC servicers use), so the console can only do
what the node's audited services do. Every response carries the security headers of
:data:`SECURITY_HEADERS` (a strict Content-Security-Policy with no script at all, HSTS,
no framing, no referrer) and, except the stylesheet, ``Cache-Control: no-store``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import jinja2
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from childreg import codes
from childreg.i18n import format_date, format_datetime, gettext, language_names, translations
from childreg.profile import Profile, active
from node.audit.service import Audited
from node.consent.desk import ConsentDesk
from node.consent.receipts import PURPOSE_TEXT
from node.console.accounts import ADMIN, Accounts
from node.console.sessions import Sessions
from node.console.settings import ConsoleSettings
from node.console.web import endpoint
from node.crypto.keys import Keyring
from node.records.registry import Registry
from node.statistics.desk import StatisticsDesk
from node.store.base import RecordStore

if TYPE_CHECKING:
    from node.console.web import Page

HERE: Final = Path(__file__).parent
CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Final = (
    (b"content-security-policy", CSP.encode()),
    (b"strict-transport-security", b"max-age=31536000"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


class Health:
    """What the node's health page reads: when a witness last cosigned the log."""

    def __init__(self, witnessed: Callable[[], float | None] = lambda: None) -> None:
        self._witnessed = witnessed  # monotonic seconds (Checkpointer.last_witnessed)

    def last_witnessed(self) -> dt.datetime | None:
        """When any witness last cosigned a checkpoint, if ever (UTC)."""
        last = self._witnessed()
        if last is None:
            return None
        ago = time.monotonic() - last
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ago)


@dataclass
class Console:
    """Everything a page may use; built once by :func:`node.console.server.start_console`."""

    settings: ConsoleSettings
    department: str
    department_name: str
    store: RecordStore
    keyring: Keyring
    registry: Registry
    consents: ConsentDesk
    audited: Audited
    accounts: Accounts
    sessions: Sessions
    desk: StatisticsDesk
    max_snapshot_rho: Fraction
    health: Health
    templates: Templates


class Templates:
    """The page templates, one autoescaping Jinja2 environment per language."""

    def __init__(self, directory: Path = HERE / "templates") -> None:
        self._directory = directory
        self._environments: dict[str, jinja2.Environment] = {}

    def environment(self, language: str) -> jinja2.Environment:
        """The environment with ``language``'s catalog installed."""
        found = self._environments.get(language)
        if found is None:
            found = jinja2.Environment(
                loader=jinja2.FileSystemLoader(self._directory),
                autoescape=True,
                extensions=["jinja2.ext.i18n"],
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                auto_reload=False,  # templates ship with the code: no stat per render
            )
            found.policies["ext.i18n.trimmed"] = True  # as the messages were extracted
            found.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
            self._environments[language] = found
        return found

    def render(self, page: Page, template: str, values: Mapping[str, Any]) -> str:
        """``template`` for ``page``'s person, with the layout's values."""
        session = page.session
        language = page.language
        zone = page.console.settings.time_zone
        profile = active()
        common = {
            "language": language,
            "languages": language_names(),
            "csrf": session.csrf,
            "signed_in": session.verified,
            "login": session.login if session.verified else "",
            "is_admin": session.verified and session.role == ADMIN,
            "may_change": page.may_change,
            "department_name": page.console.department_name,
            "path": page.request.url.path,
            "date": lambda day, style="long": (
                "" if day is None else format_date(day, language, style)
            ),
            "moment": lambda at: _moment(at, language, zone),
            # Codes, districts and schools by their names in the person's language.
            "code": lambda code_list, code: (
                profile.code_name(code_list, code, language) if code else "—"
            ),
            "unit": lambda code: profile.unit_name(code, language) if code else "—",
            "school": lambda school: _school_name(profile, school, language),
            "frequency_domains": codes.FREQUENCY_DOMAINS,
            "purpose": lambda purpose: gettext(language, PURPOSE_TEXT.get(purpose) or purpose),
        }
        return self.environment(language).get_template(template).render({**common, **values})


def _school_name(profile: Profile, school: str | None, language: str) -> str:
    """A school by its name in the directory; its id where the directory has none."""
    if not school:
        return "—"
    found = profile.school(school)
    return profile.name_in(found.names, language) if found is not None else school


def _moment(at: dt.datetime | str | None, language: str, zone: str) -> str:
    """A moment (a datetime, or a leaf's ``2026-12-07T09:30:00Z``) in the local form."""
    if at is None or at == "":
        return ""
    moment = dt.datetime.fromisoformat(at.replace("Z", "+00:00")) if isinstance(at, str) else at
    return format_datetime(moment, language, zone, "medium")


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` and the cache policy to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"
                ]
                headers.extend(SECURITY_HEADERS)
                headers.append(
                    (b"cache-control", b"public, max-age=3600" if static else b"no-store")
                )
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, sending)


def build_app(console: Console) -> ASGIApp:
    """The console's ASGI application."""
    from node.console.pages import ROUTES  # noqa: PLC0415 - the pages import this module

    routes: list[Route | Mount] = [
        Route(r.path, endpoint(console, r), methods=list(r.methods)) for r in ROUTES
    ]
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    return SecurityHeaders(Starlette(routes=routes))
