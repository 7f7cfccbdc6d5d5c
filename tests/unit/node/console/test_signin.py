"""Signing in to the console in-process: both factors, lockout, CSRF, expiry, headers."""

from __future__ import annotations

import pyotp

from node.console.app import CSP
from node.console.sessions import Sessions
from node.console.web import COOKIE
from tests.unit.node.console.conftest import OPERATOR, PASSWORD, Harness


def test_password_then_code_signs_in(harness: Harness) -> None:
    """The right password and then the right TOTP code reach the search page."""
    harness.sign_in(harness.add("aysel"))
    answer = harness.client.get("/search")
    assert answer.status_code == 200
    assert "aysel" in answer.text


def test_a_wrong_code_does_not_sign_in(harness: Harness) -> None:
    """The right password with a wrong code leaves the person signed out."""
    harness.add("aysel")
    harness.client.post(
        "/sign-in", data={"csrf": harness.csrf(), "login": "aysel", "password": PASSWORD}
    )
    answer = harness.client.post(
        "/sign-in/code", data={"csrf": harness.csrf("/sign-in/code"), "code": "000000"}
    )
    assert answer.status_code == 401
    assert harness.client.get("/search").url.path == "/sign-in"


def test_repeated_failures_lock_the_account(harness: Harness) -> None:
    """Three wrong passwords lock the account: the right one is refused until it expires."""
    enrolment = harness.add("aysel")
    for _ in range(3):
        wrong = harness.client.post(
            "/sign-in",
            data={"csrf": harness.csrf(), "login": "aysel", "password": "wrong password!"},
        )
        assert wrong.status_code == 401
    refused = harness.client.post(
        "/sign-in", data={"csrf": harness.csrf(), "login": "aysel", "password": PASSWORD}
    )
    assert refused.status_code == 401
    harness.clock.now += 15 * 60 + 1
    harness.sign_in(enrolment)


def test_a_form_without_its_csrf_token_is_refused(harness: Harness) -> None:
    """A POST without the session's CSRF token is refused with 403 and signs nobody in."""
    harness.add("aysel")
    harness.csrf()  # a session exists
    answer = harness.client.post("/sign-in", data={"login": "aysel", "password": PASSWORD})
    assert answer.status_code == 403
    other = harness.client.post(
        "/sign-in", data={"csrf": "forged", "login": "aysel", "password": PASSWORD}
    )
    assert other.status_code == 403


def test_an_idle_session_expires(harness: Harness) -> None:
    """A session unused for longer than idle_minutes is signed out."""
    harness.sign_in(harness.add("aysel"))
    harness.clock.now += 10 * 60 + 1
    assert harness.client.get("/search").url.path == "/sign-in"


def test_a_code_is_accepted_once(harness: Harness) -> None:
    """The TOTP code of one sign-in cannot be used again for another."""
    enrolment = harness.add("aysel")
    code = pyotp.TOTP(enrolment.totp_secret).at(harness.clock.now)
    for expected in (303, 401):
        harness.client.cookies.clear()
        harness.client.post(
            "/sign-in", data={"csrf": harness.csrf(), "login": "aysel", "password": PASSWORD}
        )
        answer = harness.client.post(
            "/sign-in/code",
            data={"csrf": harness.csrf("/sign-in/code"), "code": code},
            follow_redirects=False,
        )
        assert answer.status_code == expected


def test_every_page_sends_the_security_headers(harness: Harness) -> None:
    """The sign-in page and a signed-in page carry CSP, HSTS, no framing and no-store."""
    first = harness.client.get("/sign-in")
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    harness.sign_in(harness.add("aysel"))
    for answer in (first, harness.client.get("/search")):
        assert answer.headers["content-security-policy"] == CSP
        assert "frame-ancestors 'none'" in CSP
        assert "script-src" not in CSP
        assert answer.headers["strict-transport-security"].startswith("max-age=")
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-frame-options"] == "DENY"


def test_sign_out_ends_the_session(harness: Harness) -> None:
    """After signing out, the old session no longer opens a page."""
    harness.sign_in(harness.add("aysel"))
    token = harness.client.cookies.get(COOKIE)
    csrf = harness.csrf("/search")
    assert harness.client.post("/sign-out", data={"csrf": csrf}).url.path == "/sign-in"
    harness.client.cookies.set(COOKIE, token or "")
    assert harness.client.get("/search").url.path == "/sign-in"


def test_a_reset_outside_the_console_signs_an_open_session_out(harness: Harness) -> None:
    """A reset through the Accounts service alone (as the CLI does) ends the open session."""
    harness.sign_in(harness.add("aysel"))
    assert harness.client.get("/search").url.path == "/search"
    harness.console.accounts.reset(OPERATOR, "aysel", PASSWORD)
    assert harness.client.get("/search").url.path == "/sign-in"


def test_anonymous_sessions_at_the_cap_never_evict_a_verified_one() -> None:
    """At the cap, new anonymous sessions push out older anonymous ones, never staff's."""
    sessions = Sessions(600, 3600, max_sessions=3)
    staff = sessions.renew(sessions.open("en"), login="aysel", role="staff", verified=True)
    anonymous = [sessions.open("en") for _ in range(10)]
    assert sessions.get(staff.token) is staff
    assert sessions.get(anonymous[0].token) is None
    assert sessions.get(anonymous[-1].token) is anonymous[-1]
