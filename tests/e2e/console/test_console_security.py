"""The console's security in a real browser against real node processes: lockout, CSRF,
session expiry, accounts per department, read-only, markup in names, and the headers."""

from __future__ import annotations

import json
import ssl
import time
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from node.console.app import CSP
from tests.e2e.conftest import cli
from tests.e2e.console.conftest import (
    HOSTILE_FAMILY,
    HOSTILE_GIVEN,
    SHORT_IDLE_MINUTES,
    ConsoleFederation,
    add_user,
    enter_password,
    fill,
    sign_in,
    submit,
    wait_for,
)


def signed_out(browser: WebDriver) -> bool:
    """Whether the browser is on the sign-in form."""
    return bool(browser.find_elements(By.ID, "login"))


def test_repeated_wrong_passwords_lock_the_account(
    fed: ConsoleFederation, browser: WebDriver
) -> None:
    """Three wrong passwords lock the account: the right password and code then fail too."""
    account = add_user(fed, fed.first, "locked-out")
    console = fed.consoles[fed.first]
    wrong = type(account)(account.login, "not the password", account.totp_secret, account.role)
    for _ in range(3):
        enter_password(browser, console, wrong)
        assert "Sign-in failed" in wait_for(browser, ".error").text
    enter_password(browser, console, account)
    assert signed_out(browser)
    assert "Sign-in failed" in browser.find_element(By.CSS_SELECTOR, ".error").text
    listed = cli("node", "user", "list", "--config", str(fed.fed.nodes[fed.first].config), "--json")
    assert {u["login"]: u["locked"] for u in json.loads(listed.stdout)}["locked-out"] is True


def test_a_form_without_its_csrf_token_is_refused(
    fed: ConsoleFederation, browser: WebDriver
) -> None:
    """A search posted without its CSRF token is refused (403) and shows no child."""
    account = add_user(fed, fed.first, "csrf-check")
    sign_in(browser, fed.consoles[fed.first], account)
    browser.execute_script("document.querySelector('form.search input[name=csrf]').remove()")
    fill(browser, "name", fed.children[0]["given_name"])
    submit(browser, "search")
    assert "You may not do this" in wait_for(browser, ".error").text
    assert fed.children[0]["family_name"] not in browser.page_source


def test_an_expired_session_is_refused(fed: ConsoleFederation, browser: WebDriver) -> None:
    """After the idle time (6 s at the second department) a signed-in page sends back to
    sign-in."""
    account = add_user(fed, fed.second, "idle")
    sign_in(browser, fed.consoles[fed.second], account)
    time.sleep(SHORT_IDLE_MINUTES * 60 + 2)
    browser.get(fed.consoles[fed.second] + "/search")
    wait_for(browser, "#login")
    assert signed_out(browser)


def test_staff_of_one_department_cannot_sign_in_at_another(
    fed: ConsoleFederation, browser: WebDriver
) -> None:
    """An account of department A is unknown at B's console."""
    account = add_user(fed, fed.first, "only-at-a")
    enter_password(browser, fed.consoles[fed.second], account)
    assert "Sign-in failed" in wait_for(browser, ".error").text
    assert signed_out(browser)


def test_a_read_only_account_changes_nothing(fed: ConsoleFederation, browser: WebDriver) -> None:
    """A read-only person may search, but a changing form they post is refused, changing nothing."""
    reader = add_user(fed, fed.first, "reader", role="read-only")
    victim = add_user(fed, fed.first, "victim")
    sign_in(browser, fed.consoles[fed.first], reader)
    csrf = browser.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    # A changing form the read-only page does not offer, posted with the session's token.
    browser.execute_script(
        "const f = document.createElement('form'); f.method = 'post';"
        "f.action = '/admin/users/disable';"
        "for (const [k, v] of [['csrf', arguments[0]], ['login', arguments[1]]]) {"
        "  const i = document.createElement('input'); i.type = 'hidden'; i.name = k;"
        "  i.value = v; f.appendChild(i); }"
        "document.body.appendChild(f); f.submit();",
        csrf,
        victim.login,
    )
    assert "You may not do this" in wait_for(browser, ".error").text
    listed = cli("node", "user", "list", "--config", str(fed.fed.nodes[fed.first].config), "--json")
    assert {u["login"]: u["disabled"] for u in json.loads(listed.stdout)}["victim"] is False


def test_markup_in_a_name_renders_as_text(fed: ConsoleFederation, browser: WebDriver) -> None:
    """A child named with HTML and a script shows the characters, and no script runs."""
    account = add_user(fed, fed.first, "xss-check")
    sign_in(browser, fed.consoles[fed.first], account)
    hostile = fed.children[-1]
    fill(browser, "national_id", hostile["national_id"])
    submit(browser, "search")
    link = wait_for(browser, "table a[href^='/child/']")
    assert link.text == f"{HOSTILE_GIVEN} {HOSTILE_FAMILY}"
    link.click()
    record = wait_for(browser, "#record")
    assert record.text == f"{HOSTILE_GIVEN} {HOSTILE_FAMILY}"
    assert browser.execute_script("return window.pwned === undefined") is True
    assert not browser.find_elements(By.CSS_SELECTOR, "main b")


def test_the_console_serves_the_security_headers_over_verified_tls(
    fed: ConsoleFederation,
) -> None:
    """Over HTTPS verified against the federation CA, the pages send CSP, HSTS and no-store."""
    context = ssl.create_default_context(
        cafile=str(fed.fed.identity(f"node-{fed.first}") / "ca.crt")
    )
    for path in ("/sign-in", "/static/console.css"):
        with urllib.request.urlopen(fed.consoles[fed.first] + path, context=context) as answer:
            headers = answer.headers
        assert headers["Content-Security-Policy"] == CSP
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
        assert headers["X-Frame-Options"] == "DENY"
        expected = "no-store" if path == "/sign-in" else "public, max-age=3600"
        assert headers["Cache-Control"] == expected


def test_a_disabled_account_is_signed_out_at_once(
    fed: ConsoleFederation, browser: WebDriver
) -> None:
    """`childreg node user disable` ends a signed-in person's session at their next request."""
    account = add_user(fed, fed.first, "leaver")
    sign_in(browser, fed.consoles[fed.first], account)
    done = cli("node", "user", "disable", "leaver", "--config",
               str(fed.fed.nodes[fed.first].config))  # fmt: skip
    assert done.returncode == 0, done.stderr
    browser.get(fed.consoles[fed.first] + "/search")
    wait_for(browser, "#login")
    enter_password(browser, fed.consoles[fed.first], account)
    assert "Sign-in failed" in wait_for(browser, ".error").text
