"""Signing in (password, then the TOTP code), signing out, and picking a language."""

from __future__ import annotations

import re

from starlette.responses import Response

from childreg.i18n import LANGUAGES
from node.console.accounts import SignInFailed
from node.console.web import Page, Routes

routes = Routes()
#: Where the language form may send the person back to: a path of this console only (no
#: "//host" or "/\\host", which browsers read as another site).
_LOCAL_PATH = re.compile(r"/[A-Za-z0-9/_-]*")


def _failed(page: Page) -> str:
    failures, minutes = page.console.accounts.lockout
    return page._(
        "Sign-in failed: the login, password or code is wrong, or the account is locked or "
        "disabled. After {failures} failed attempts an account is locked for {minutes} minutes."
    ).format(failures=failures, minutes=int(minutes.total_seconds() // 60))


@routes.get("/", access="public")
async def home(page: Page) -> Response:
    """The search page for a signed-in person, else the sign-in page."""
    return page.redirect("/search" if page.session.verified else "/sign-in")


@routes.get("/sign-in", access="public")
async def sign_in_form(page: Page) -> Response:
    """The first factor's form."""
    return page.render("sign_in.html", title=page._("Sign in"), error="", login="")


@routes.post("/sign-in", access="public")
async def sign_in(page: Page) -> Response:
    """Check the password; on success, ask for the code."""
    login = page.field("login").strip().lower()
    password = page.field("password")
    try:
        await page.call(lambda: page.console.accounts.check_password(login, password))
    except SignInFailed:
        return page.render("sign_in.html", 401, title=page._("Sign in"), error=_failed(page),
                           login=login)  # fmt: skip
    page.new_session = page.console.sessions.renew(page.session, login=login, role="",
                                                   verified=False)  # fmt: skip
    return page.redirect("/sign-in/code")


@routes.get("/sign-in/code", access="half")
async def code_form(page: Page) -> Response:
    """The second factor's form."""
    return page.render("sign_in_code.html", title=page._("Sign in"), error="")


@routes.post("/sign-in/code", access="half")
async def code(page: Page) -> Response:
    """Check the TOTP code; on success, the person is signed in (a new session)."""
    login = page.session.login
    entered = page.field("code")
    try:
        who = await page.call(lambda: page.console.accounts.check_code(login, entered))
    except SignInFailed:
        # Back to the first factor, in a new anonymous session.
        page.new_session = page.console.sessions.renew(page.session, login="", role="",
                                                       verified=False)  # fmt: skip
        page.session = page.new_session
        return page.render("sign_in.html", 401, title=page._("Sign in"), error=_failed(page),
                           login=login)  # fmt: skip
    page.new_session = page.console.sessions.renew(page.session, login=who.login, role=who.role,
                                                   verified=True)  # fmt: skip
    page.new_session.language = who.language
    page.new_session.changed_at = who.changed_at
    return page.redirect("/search")


@routes.post("/sign-out", access="public")
async def sign_out(page: Page) -> Response:
    """End the session (the old token opens nothing any more)."""
    if page.session.verified:
        login = page.session.login
        await page.call(lambda: page.console.accounts.signed_out(login))
    # A new anonymous session (new token) keeps only the language.
    page.new_session = page.console.sessions.renew(page.session, login="", role="",
                                                   verified=False)  # fmt: skip
    return page.redirect("/sign-in")


@routes.post("/language", access="public")
async def language(page: Page) -> Response:
    """Switch the session's language and go back to the page the person was on."""
    chosen = page.field("language")
    if chosen in LANGUAGES:
        page.session.language = chosen
    back = page.field("back")
    return page.redirect(back if _LOCAL_PATH.fullmatch(back) else "/")
