"""A journey in Azerbaijani: the person picks the language, signs in, finds a child and
reads the record with Azerbaijani words and dates."""

from __future__ import annotations

import datetime as dt

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from childreg.i18n import format_date
from tests.e2e.console.conftest import (
    ConsoleFederation,
    add_user,
    current_code,
    fill,
    shot,
    submit,
    wait_for,
)


def test_a_journey_in_azerbaijani(fed: ConsoleFederation, browser: WebDriver) -> None:
    """Picked on the sign-in page, Azerbaijani holds through sign-in, search, record, sign-out."""
    account = add_user(fed, fed.first, "leyla", language="az")
    console = fed.consoles[fed.first]
    browser.get(console + "/sign-in")
    wait_for(browser, "#language-picker")
    Select(browser.find_element(By.ID, "language-picker")).select_by_value("az")
    submit(browser, "language-change")
    assert wait_for(browser, "html").get_attribute("lang") == "az"
    assert "Daxil ol" in browser.title
    fill(browser, "login", account.login)
    fill(browser, "password", account.password)
    submit(browser, "sign-in")
    fill(browser, "code", current_code(account))
    submit(browser, "verify")
    assert "Uşaq axtar" in wait_for(browser, "h1").text
    child = fed.children[2]
    fill(browser, "name", f"{child['given_name']} {child['family_name']}")
    submit(browser, "search")
    wait_for(browser, "#results")
    assert "Tap\u0131lan u\u015faqlar" in browser.page_source  # "found children"
    shot(browser, "search-az")
    browser.find_element(By.CSS_SELECTOR, "table a[href^='/child/']").click()
    record = wait_for(browser, "section[aria-labelledby=record]")
    born = format_date(dt.date.fromisoformat(child["date_of_birth"]), "az")
    assert born in record.text
    assert "Doğum tarixi" in record.text
    shot(browser, "child-az")
    submit(browser, "sign-out")
    assert wait_for(browser, "h1").text == "Daxil ol"
