"""The acceptance journey of the console's daily work in Chromium against a real node:
sign in with password and TOTP, find a misspelt name, register a child through the
duplicate warning, record an assessment, change the care setting, correct a name with a
reason, grant a consent and download its PDF receipt, withdraw it, import a CSV with two
bad rows and see both, sign out; then the node's log holds exactly one leaf per action,
each naming the person."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from childreg.csvformat import record_to_row, write_rows
from childreg.models import ChildIn, ImportRecord, PlacementIn
from childreg.profile import current_academic_year
from tests.e2e.conftest import cli
from tests.e2e.console.conftest import (
    ConsoleFederation,
    add_user,
    fill,
    shot,
    sign_in,
    submit,
    wait_for,
)
from tests.e2e.console.test_console_journey import misspelt


def set_date(driver: WebDriver, field_id: str, day: dt.date) -> None:
    """Set a date field (typing into a date picker depends on the browser's locale)."""
    element = driver.find_element(By.ID, field_id)
    driver.execute_script("arguments[0].value = arguments[1]", element, day.isoformat())


def choose(driver: WebDriver, field_id: str, value: str) -> None:
    """Pick the option ``value`` of a select."""
    Select(driver.find_element(By.ID, field_id)).select_by_value(value)


def bad_import(path: Path, district: str) -> Path:
    """Three new children, the second and third (lines 3 and 4) with an unknown sex."""
    rows = []
    for n in range(3):
        born = dt.date(2014, 1, 1 + n)
        child = ChildIn(child_id=f"WEB{n}", given_name="Murad", family_name=f"Aliyev{n}",
                        date_of_birth=born, sex="male", district=district)  # fmt: skip
        placement = PlacementIn(child_id=f"WEB{n}", academic_year=current_academic_year(),
                                education_form="mainstream_class")  # fmt: skip
        row = record_to_row(ImportRecord(line=n + 2, child=child, placement=placement))
        if n > 0:
            row["sex"] = "unknown"
        rows.append(row)
    write_rows(path, rows)
    return path


def expect(driver: WebDriver, css: str) -> WebElement:
    """The element ``css``; failing with the page's main text when it does not come."""
    try:
        found: WebElement = wait_for(driver, css, 60)
        return found
    except TimeoutException:
        main = driver.find_elements(By.TAG_NAME, "main")
        raise AssertionError(f"{css} not on the page: {main[0].text if main else ''}") from None


def downloaded_pdf(folder: Path) -> bytes:
    """The one PDF the browser saved into ``folder`` (waiting for it to finish)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.suffix == ".pdf"]
        if done:
            return done[0].read_bytes()
        time.sleep(0.5)
    raise AssertionError(f"no PDF downloaded into {folder}: {list(folder.iterdir())}")


def staff_leaves(cf: ConsoleFederation, actor: str) -> list[tuple[str, str, str]]:
    """(action, purpose, outcome) of every leaf of the first node's log naming ``actor``,
    read by the auditor with `childreg audit search` (which verifies the log first)."""
    fed, dept = cf.fed, cf.first
    node = fed.nodes[dept]
    r = cli("audit", "search", "--node", node.address, "--server-name", node.server_name,
            "--identity", str(fed.identity("auditor")), "--node-key",
            fed.audit_verifier_key(dept), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    matches = json.loads(r.stdout)["matches"]
    return [(m["action"], m["purpose"], m["outcome"]) for m in matches if m["actor"] == actor]


def test_the_daily_work_in_a_browser_leaves_one_leaf_per_action(
    fed: ConsoleFederation, browser: WebDriver, tmp_path: Path
) -> None:
    """The acceptance journey; afterwards one leaf per action, each with the person as actor."""
    account = add_user(fed, fed.first, "rashad")
    console = fed.consoles[fed.first]
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    sign_in(browser, console, account)

    # Find a misspelt name.
    known = fed.children[0]
    fill(browser, "name", f"{misspelt(known['given_name'])} {known['family_name']}")
    submit(browser, "search")
    expect(browser, "table a[href^='/child/']")
    assert known["family_name"] in browser.page_source

    # Register a child like a known one: the warning shows it; confirm with a reason.
    browser.find_element(By.CSS_SELECTOR, "a[href='/register']").click()
    expect(browser, "#child_id")
    fill(browser, "child_id", "WEB-NEW-1")
    fill(browser, "given_name", known["given_name"])
    fill(browser, "family_name", known["family_name"])
    set_date(browser, "date_of_birth", dt.date.fromisoformat(known["date_of_birth"]))
    choose(browser, "sex", known["sex"])
    choose(browser, "district", known["district"])
    shot(browser, "register")
    submit(browser, "register")
    expect(browser, "#duplicates")
    warning = browser.find_element(By.CSS_SELECTOR, "section[aria-labelledby=duplicates]")
    assert known["family_name"] in warning.text
    shot(browser, "register-duplicates")
    fill(browser, "not_duplicate_reason", "a cousin with the same name; other parents")
    submit(browser, "register-confirm")
    expect(browser, "#go-assessment")

    # Record an assessment from the code lists.
    browser.find_element(By.ID, "go-assessment").click()
    expect(browser, "#commission")
    set_date(browser, "assessment_date", dt.date.today() - dt.timedelta(days=7))
    fill(browser, "commission", "Central PMPC")
    choose(browser, "impairment_band", "pct_41_60")
    choose(browser, "fn_seeing", "some_difficulty")
    fill(browser, "icf_0", "d160")
    choose(browser, "icf_0_q", "2")
    browser.find_element(By.ID, "support-braille").click()
    shot(browser, "assessment")
    submit(browser, "record-assessment")
    expect(browser, "#assessments")
    assert "d160.2" in browser.find_element(By.ID, "assessments").find_element(By.XPATH, "..").text

    # Change the care setting.
    browser.find_element(By.ID, "go-care").click()
    expect(browser, "#care_setting")
    choose(browser, "care_setting", "foster_family")
    set_date(browser, "since", dt.date.today() - dt.timedelta(days=3))
    shot(browser, "care-setting")
    submit(browser, "record-care")
    expect(browser, "#go-correct")

    # Correct the name with a reason.
    browser.find_element(By.ID, "go-correct").click()
    expect(browser, "#family_name")
    fill(browser, "family_name", known["family_name"] + "li")
    fill(browser, "reason", "spelling on the birth certificate")
    shot(browser, "correct")
    submit(browser, "correct")
    expect(browser, "#record")
    assert known["family_name"] + "li" in browser.find_element(By.ID, "record").text

    # Grant a consent; its receipt; download the PDF.
    browser.find_element(By.ID, "go-consent").click()
    expect(browser, "#guardian_name")
    fill(browser, "guardian_name", "Sevda Aliyeva")
    school = browser.find_element(By.ID, "school")
    if school.tag_name == "select":
        Select(school).select_by_index(0)
    else:
        fill(browser, "school", "demo-school")
    set_date(browser, "valid_from", dt.date.today())
    set_date(browser, "valid_until", dt.date.today() + dt.timedelta(days=300))
    fill(browser, "evidence_ref", "signed form 7/2026")
    shot(browser, "consent")
    submit(browser, "grant-consent")
    expect(browser, "#receipt")
    assert "Sevda Aliyeva" in browser.find_element(By.CSS_SELECTOR, "section.receipt").text
    shot(browser, "consent-receipt")
    browser.find_element(By.ID, "receipt-pdf").click()
    assert downloaded_pdf(downloads).startswith(b"%PDF-")
    assert "Sevda" not in browser.current_url

    # Withdraw it.
    browser.find_element(By.CSS_SELECTOR, "a[href^='/child/']").click()
    expect(browser, "#go-withdraw")
    browser.find_element(By.ID, "go-withdraw").click()
    expect(browser, "#withdraw-1")
    submit(browser, "withdraw-1")
    expect(browser, "#receipt")
    shot(browser, "withdrawal-receipt")

    # Import a CSV with two bad rows: both are listed, nothing is imported.
    browser.find_element(By.CSS_SELECTOR, "a[href='/import']").click()
    expect(browser, "#file")
    csv_file = bad_import(tmp_path / "children.csv", known["district"])
    browser.find_element(By.ID, "file").send_keys(str(csv_file))
    submit(browser, "import")
    rows = expect(browser, "#import-errors").find_elements(By.CSS_SELECTOR, "tr.bad-row")
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows] == ["3", "4"]
    shot(browser, "import-errors")

    submit(browser, "sign-out")
    expect(browser, "#login")

    actor = f"department-staff/{fed.first}.rashad"
    assert staff_leaves(fed, actor) == [
        ("console.sign_in", "", "OK"),
        ("child.search", "", "OK"),
        ("child.register", "duplicates-shown", "OK"),
        ("child.register", "not-duplicate", "OK"),
        ("child.read", "console.child", "OK"),  # the new record's page
        ("assessment.record", "", "OK"),
        ("child.read", "console.child", "OK"),
        ("care_setting.record", "", "OK"),
        ("child.read", "console.child", "OK"),
        ("child.correct", "", "OK"),
        ("child.read", "console.child", "OK"),
        ("consent.grant", "", "OK"),
        ("child.read", "console.child", "OK"),  # back to the record
        ("child.read", "console.consents", "OK"),  # the consents to withdraw
        ("consent.withdraw", "iep_preparation", "OK"),
        ("records.import", "", "INVALID_ARGUMENT"),
        ("console.sign_out", "", "OK"),
    ]
