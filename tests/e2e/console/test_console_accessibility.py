"""axe-core on every console page in a real browser: no serious or critical violation;
each main page's screenshot goes to docs/console/ (CHILDREG_SCREENSHOTS=1)."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.console.conftest import (
    ConsoleFederation,
    add_user,
    axe,
    current_code,
    enter_password,
    fill,
    page_replaced,
    shot,
    sign_in,
    submit,
    wait_for,
)


def test_no_page_has_a_serious_accessibility_violation(
    fed: ConsoleFederation, browser: WebDriver
) -> None:
    """Sign-in, code, search, results, child, users, enrolment, health and error pages pass axe."""
    admin = add_user(fed, fed.first, "admin-axe", role="department-admin")
    console = fed.consoles[fed.first]
    found: dict[str, list[object]] = {}

    def check(name: str, css: str) -> None:
        wait_for(browser, css)
        found[name] = [(v["id"], v["impact"], v.get("help")) for v in axe(browser)]

    browser.get(console + "/sign-in")
    check("sign-in", "#login")
    enter_password(browser, console, admin)
    check("sign-in-code", "#code")
    shot(browser, "sign-in-code")
    fill(browser, "code", current_code(admin))
    submit(browser, "verify")
    check("search", "#search")
    fill(browser, "name", fed.children[1]["family_name"])
    submit(browser, "search")
    check("search-results", "#results")
    browser.find_element(By.CSS_SELECTOR, "table a[href^='/child/']").click()
    check("child", "#record")
    browser.get(console + "/admin/users")
    check("users", "#accounts")
    shot(browser, "users")
    fill(browser, "new-login", "new-person")
    submit(browser, "add-user")
    check("enrolment", "#enrolled-secret")
    shot(browser, "enrolment")
    browser.get(console + "/admin/health")
    check("health", "#witnessed")
    shot(browser, "health")
    browser.get(console + "/child/" + "0" * 64)
    check("error", ".error")
    assert found == {page: [] for page in found}


def test_the_console_works_from_the_keyboard_alone(
    fed: ConsoleFederation, browser: WebDriver
) -> None:
    """The skip link comes first, the login has the focus, Tab moves to the password, Enter
    submits, and the focused field shows a visible outline."""
    account = add_user(fed, fed.first, "keyboard")
    browser.get(fed.consoles[fed.first] + "/sign-in")
    wait_for(browser, "#login")
    first = browser.execute_script("return document.querySelector('a, button, input, select')")
    assert first.get_attribute("class") == "skip"
    assert browser.switch_to.active_element.get_attribute("id") == "login"
    browser.switch_to.active_element.send_keys(account.login, Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "password"
    old = browser.find_element(By.TAG_NAME, "html")
    browser.switch_to.active_element.send_keys(account.password, Keys.ENTER)

    WebDriverWait(browser, 60).until(lambda _: page_replaced(old))
    code = wait_for(browser, "#code")
    assert browser.switch_to.active_element == code  # autofocus on the code
    outline = browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # the focus is visible


def test_no_record_page_has_a_serious_accessibility_violation(
    fed: ConsoleFederation, browser: WebDriver
) -> None:
    """Register (and its duplicate warning), assessment, placement, care setting,
    correction, closing, consent, withdrawal, import (and its errors), emergency access (and
    the record it opens) and counts pages pass axe."""
    staff = add_user(fed, fed.first, "staff-axe")
    console = fed.consoles[fed.first]
    known = fed.children[2]
    found: dict[str, list[object]] = {}

    def check(name: str, css: str) -> None:
        wait_for(browser, css)
        found[name] = [(v["id"], v["impact"], v.get("help")) for v in axe(browser)]

    sign_in(browser, console, staff)
    browser.get(console + "/register")
    check("register", "#child_id")
    for field in ("given_name", "family_name"):
        fill(browser, field, known[field])
    fill(browser, "child_id", "AXE-1")
    browser.execute_script(
        "document.getElementById('date_of_birth').value = arguments[0]", known["date_of_birth"]
    )
    Select(browser.find_element(By.ID, "sex")).select_by_value(known["sex"])
    Select(browser.find_element(By.ID, "district")).select_by_value(known["district"])
    submit(browser, "register")
    check("register-duplicates", "#register-confirm")
    browser.find_element(By.CSS_SELECTOR, "section a[href^='/child/']").click()
    wait_for(browser, "#go-assessment")
    child = browser.current_url
    for name, css in (
        ("assessment", "#commission"), ("placement", "#academic_year"),
        ("care", "#care_setting"), ("correct", "#family_name"), ("close", "#closed_on"),
        ("consent", "#guardian_name"), ("consents", "#in-force"),
    ):  # fmt: skip
        browser.get(f"{child}/{name}")
        check(name, css)
        if name in ("placement", "close", "consents"):
            shot(browser, name)
    browser.get(console + "/import")
    check("import", "#file")
    shot(browser, "import")
    browser.get(console + "/emergency")
    check("emergency", "#reason")
    fill(browser, "child_id", known["child_id"])
    fill(browser, "reason", "accessibility check of the emergency page")
    shot(browser, "emergency")
    submit(browser, "break-glass")
    check("emergency-record", "#record")
    browser.get(console + "/counts")
    check("counts", "#counts-total")
    shot(browser, "counts")
    assert found == {page: [] for page in found}
