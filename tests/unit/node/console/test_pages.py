"""Every console route in-process: roles, CSRF and headers hold for all of them, and each
action leaves one leaf naming the person."""

from __future__ import annotations

import datetime as dt
import re

import pyotp
import pytest

from childreg.audit.leaf import AuditEvent
from childreg.models import ChildIn
from childreg.profile import active
from node.console.app import CSP
from node.console.pages import ROUTES
from node.console.pages.admin import academic_years
from node.console.sessions import MAX_CHILDREN, Sessions
from node.console.web import Page, PageRoute
from tests.unit.node.console.conftest import PASSWORD, Harness

CHANGING = [r for r in ROUTES if r.access in ("change", "admin")]
CHANGING_FORMS = [r for r in CHANGING if "POST" in r.methods]
PAGES = [r for r in ROUTES if "GET" in r.methods and "{" not in r.path and r.access != "half"]


def leaves(harness: Harness) -> list[AuditEvent]:
    """Every leaf of the console's log, parsed."""
    log = harness.console.audited.log
    return [AuditEvent.from_bytes(leaf) for leaf in log.leaves()]


def register(harness: Harness, given: str = "Aysel", family: str = "Mammadova") -> str:
    """Register a child straight through the registry (no leaf); its id."""
    child = ChildIn(child_id="C1", given_name=given, family_name=family,
                    date_of_birth=dt.date(2016, 5, 4), sex="female", district="nasimi")  # fmt: skip
    harness.console.registry.register_child(child)
    return "C1"


@pytest.mark.parametrize("route", CHANGING_FORMS, ids=lambda r: r.path)
def test_a_read_only_account_is_refused_every_changing_form(
    harness: Harness, route: PageRoute
) -> None:
    """A read-only person's POST (with a valid CSRF token) to any changing route gets 403."""
    harness.sign_in(harness.add("reader", role="read-only"))
    before = harness.store.accounts()
    path = route.path.replace("{handle}", "0" * 64)
    answer = harness.client.post(path, data={"csrf": harness.csrf("/search"), "login": "reader"})
    assert answer.status_code == 403
    assert harness.store.accounts() == before


def test_every_route_is_covered() -> None:
    """The route lists these tests run over are not empty (a renamed access level would
    otherwise leave them testing nothing)."""
    assert CHANGING_FORMS
    assert PAGES
    assert all(r.access in ("public", "half", "read", "change", "admin") for r in ROUTES)


@pytest.mark.parametrize("route", PAGES, ids=lambda r: r.path)
def test_every_page_sends_the_security_headers(harness: Harness, route: PageRoute) -> None:
    """Each GET page, signed in as an admin, sends the CSP, HSTS, no-framing and no-store."""
    harness.sign_in(harness.add("admin", role="department-admin"))
    answer = harness.client.get(route.path)
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == CSP
    assert answer.headers["strict-transport-security"] == "max-age=31536000"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if "POST" in r.methods and r.access != "half"], ids=lambda r: r.path
)
def test_every_form_is_refused_without_its_csrf_token(harness: Harness, route: PageRoute) -> None:
    """Every POST route refuses a form without the session's CSRF token with 403."""
    harness.sign_in(harness.add("admin", role="department-admin"))
    answer = harness.client.post(route.path.replace("{handle}", "0" * 64), data={"login": "x"})
    assert answer.status_code == 403


def test_the_code_form_is_refused_without_its_csrf_token(harness: Harness) -> None:
    """After the password, a code posted without the CSRF token is refused and signs nobody in."""
    enrolment = harness.add("aysel")
    form = {"csrf": harness.csrf(), "login": "aysel", "password": PASSWORD}
    harness.client.post("/sign-in", data=form)
    code = pyotp.TOTP(enrolment.totp_secret).at(harness.clock.now)
    assert harness.client.post("/sign-in/code", data={"code": code}).status_code == 403
    assert harness.client.get("/search").url.path == "/sign-in"


def test_staff_pages_are_refused_to_staff_for_admin_routes(harness: Harness) -> None:
    """A staff member (not admin) gets 403 on the users and health pages."""
    harness.sign_in(harness.add("aysel"))
    assert harness.client.get("/admin/users").status_code == 403
    assert harness.client.get("/admin/health").status_code == 403


def test_a_search_and_the_child_page_leave_one_leaf_each_naming_the_person(
    harness: Harness,
) -> None:
    """Searching and opening the child leave child.search and child.read, actor the person."""
    child_id = register(harness)
    harness.sign_in(harness.add("aysel"))
    start = len(leaves(harness))
    found = harness.client.post("/search", data={"csrf": harness.csrf("/search"),
                                                 "name": "Aysel Mamadova"})  # fmt: skip
    assert "Mammadova" in found.text
    assert child_id not in found.text
    pseudonym = harness.console.keyring.pseudonym(child_id).hex()
    assert pseudonym not in found.text
    match = re.search(r'href="/child/([0-9a-f]{32})"', found.text)
    assert match is not None
    page = harness.client.get(f"/child/{match.group(1)}")
    assert page.status_code == 200
    assert "Mammadova" not in page.text.split("<title>")[1].split("</title>")[0]
    new = leaves(harness)[start:]
    assert [(e.action, e.actor, e.subject) for e in new] == [
        ("child.search", "department-staff/baku.aysel", pseudonym),
        ("child.read", "department-staff/baku.aysel", pseudonym),
    ]


def test_a_child_not_opened_from_this_session_is_not_found(harness: Harness) -> None:
    """A handle this session did not get from a search shows the not-found page."""
    child_id = register(harness)
    harness.sign_in(harness.add("aysel"))
    handle = harness.console.keyring.pseudonym(child_id).hex()
    assert harness.client.get(f"/child/{handle}").status_code == 404


def test_markup_in_a_name_is_escaped(harness: Harness) -> None:
    """A name holding a script tag is sent as escaped text."""
    register(harness, given="<b>x</b>", family="<script>alert(1)</script>")
    harness.sign_in(harness.add("aysel"))
    found = harness.client.post("/search", data={"csrf": harness.csrf("/search"),
                                                 "name": "<b>x</b>"})  # fmt: skip
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in found.text
    assert "<script>" not in found.text


def test_the_admin_adds_an_account_and_sees_its_enrolment(harness: Harness) -> None:
    """The users page adds an account, shows its secret and QR code, and leaves one leaf."""
    harness.sign_in(harness.add("admin", role="department-admin"))
    form = {"csrf": harness.csrf("/admin/users"), "login": "murad", "role": "read-only",
            "language": "ru"}  # fmt: skip
    start = len(leaves(harness))
    answer = harness.client.post("/admin/users", data=form)
    assert answer.status_code == 200
    made = harness.store.account("murad")
    assert made is not None
    assert made.role == "read-only"
    assert made.totp_secret in answer.text
    assert "<svg" in answer.text
    assert [(e.action, e.purpose, e.actor) for e in leaves(harness)[start:]] == [
        ("console.account", "add", "department-staff/baku.admin")
    ]


def test_disabling_an_account_ends_its_sessions(harness: Harness) -> None:
    """When the admin disables an account, that person's open session stops working."""
    staff = harness.add("aysel")
    harness.sign_in(staff)
    staff_cookies = dict(harness.client.cookies)
    harness.client.cookies.clear()
    harness.sign_in(harness.add("admin", role="department-admin"))
    form = {"csrf": harness.csrf("/admin/users"), "login": "aysel"}
    disabled = harness.client.post("/admin/users/disable", data=form)
    assert disabled.url.path == "/admin/users"
    harness.client.cookies.clear()
    for name, value in staff_cookies.items():
        harness.client.cookies.set(name, value)
    assert harness.client.get("/search").url.path == "/sign-in"


def test_the_absolute_expiry_ends_a_busy_session(harness: Harness) -> None:
    """A session used every few minutes still ends after absolute_hours."""
    harness.sign_in(harness.add("aysel"))
    for _ in range(6):
        harness.clock.now += 9 * 60
        assert harness.client.get("/search").url.path == "/search"
    harness.clock.now += 9 * 60  # 63 minutes in: past the hour
    assert harness.client.get("/search").url.path == "/sign-in"


def test_a_name_typed_in_the_other_script_finds_the_child(harness: Harness) -> None:
    """A search in Cyrillic finds a child registered in Azerbaijani Latin."""
    register(harness, given="Aysel", family="Məmmədova")
    harness.sign_in(harness.add("aysel"))
    found = harness.client.post(
        "/search", data={"csrf": harness.csrf("/search"), "name": "Айсель Мамедова"}
    )
    assert "Məmmədova" in found.text


def test_a_session_remembers_only_its_latest_children() -> None:
    """Handles are random, stable per child, and only the most recent 1,000 are kept."""
    page = Page.__new__(Page)
    page.session = Sessions(600, 3600).open("en")
    first = page.child_handle("C0")
    assert page.child_handle(" C0 ") == first
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    for i in range(1, MAX_CHILDREN + 1):
        page.child_handle(f"C{i}")
    assert len(page.session.children) == MAX_CHILDREN
    assert first not in page.session.children


def test_the_health_pages_years_follow_the_profiles_calendar() -> None:
    """The academic years start on the profile's first day (Azerbaijan: 15 September)."""
    assert active().calendar.start() == (9, 15)
    assert academic_years(dt.date(2026, 9, 10), 3) == ["2025/26", "2024/25", "2023/24"]
    assert academic_years(dt.date(2026, 9, 15), 2) == ["2026/27", "2025/26"]
