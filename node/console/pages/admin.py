"""The department admin's pages: the console's accounts and the node's health.

Adding or resetting an account shows its enrolment once: the password (if the node made
it), the TOTP secret as text and as a QR code (inline SVG made with segno, no script), to
scan with an authenticator app. Each change is one ``console.account`` leaf naming the
admin; a disabled or reset account's sessions end at their next request (web.py
compares the account's ``changed_at`` with the one at sign-in).
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import segno
from markupsafe import Markup
from starlette.responses import Response

from childreg.errors import InvalidInput
from childreg.i18n import LANGUAGES, language_names
from childreg.profile import current_academic_year
from node.console.accounts import Enrolment
from node.console.web import Page, Routes
from node.store.accounts import ROLES

routes = Routes()
#: How many academic years back the health page looks for privacy-budget spending.
BUDGET_YEARS = 6


def qr_svg(uri: str) -> Markup:
    """The ``otpauth://`` URI as an inline SVG QR code (safe: segno's own markup)."""
    svg = segno.make(uri, error="m").svg_inline(scale=4, title="TOTP", svgclass="qr")
    return Markup(svg)  # noqa: S704 - segno's SVG holds only the encoded URI, escaped by segno


def _enrolled(page: Page, enrolment: Enrolment) -> Response:
    return page.render("user_enrolment.html", title=page._("Enrolment"), enrolment=enrolment,
                       qr=qr_svg(enrolment.totp_uri))  # fmt: skip


async def _users(page: Page, status: int = 200, **extra: object) -> Response:
    accounts, actor = page.console.accounts, page.actor
    listed = await page.call(lambda: accounts.list(actor))
    values = {"users": listed, "roles": ROLES, "language_choices": language_names(),
              "errors": [], "new_login": "", **extra}  # fmt: skip
    return page.render("users.html", status, title=page._("Users"), **values)


@routes.get("/admin/users", access="admin")
async def users(page: Page) -> Response:
    """Every account of this node, with the forms to add, reset and disable."""
    return await _users(page)


@routes.post("/admin/users", access="admin")
async def add_user(page: Page) -> Response:
    """Add an account and show its enrolment."""
    login, role = page.field("login").strip(), page.field("role")
    language = page.field("language") if page.field("language") in LANGUAGES else "en"
    accounts, actor = page.console.accounts, page.actor
    try:
        enrolment = await page.call(lambda: accounts.add(actor, login, role, language))
    except InvalidInput as exc:
        return await _users(page, 400, errors=exc.violations, new_login=login)
    return _enrolled(page, enrolment)


@routes.post("/admin/users/reset", access="admin")
async def reset_user(page: Page) -> Response:
    """A new password and TOTP secret for an account; its sessions end."""
    login = page.field("login")
    accounts, actor = page.console.accounts, page.actor
    enrolment = await page.call(lambda: accounts.reset(actor, login))
    return _enrolled(page, enrolment)


@routes.post("/admin/users/disable", access="admin")
async def disable_user(page: Page) -> Response:
    """Disable an account; its sessions end."""
    login = page.field("login")
    accounts, actor = page.console.accounts, page.actor
    await page.call(lambda: accounts.disable(actor, login))
    return page.redirect("/admin/users")


def academic_years(today: dt.date, count: int) -> list[str]:
    """The ``count`` latest academic years (``2024/25``), newest first."""
    first = int(current_academic_year(today)[:4])  # by the country profile's calendar
    return [f"{y}/{(y + 1) % 100:02d}" for y in range(first, first - count, -1)]


@routes.get("/admin/health", access="admin")
async def health(page: Page) -> Response:
    """When the log was last witnessed, its size, and the budget spent per snapshot."""
    console = page.console
    years = academic_years(dt.date.today(), BUDGET_YEARS)

    def spent() -> list[tuple[str, Fraction]]:
        return [(year, console.desk.spent(year)) for year in years]

    budget = await page.call(spent)
    size = await page.call(lambda: console.audited.log.size)
    return page.render(
        "health.html",
        title=page._("Node health"),
        witnessed=console.health.last_witnessed(),
        log_size=size,
        budget=budget,
        cap=console.max_snapshot_rho,
    )
