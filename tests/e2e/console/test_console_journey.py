"""A person signs in to a real node's console in Chromium, finds a child, opens the
record and signs out; the node's log names the person for each action."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.console.conftest import (
    LATIN_FAMILY,
    ConsoleFederation,
    add_user,
    fill,
    shot,
    sign_in,
    submit,
    wait_for,
)


def misspelt(name: str) -> str:
    """``name`` with two letters swapped (a typo the search must forgive)."""
    return name[0] + name[2] + name[1] + name[3:] if len(name) > 3 else name


def test_sign_in_find_a_misspelt_name_open_the_child_sign_out(
    fed: ConsoleFederation, browser: WebDriver
) -> None:
    """Password and TOTP sign in; a misspelt name finds the child; its page opens; sign-out."""
    account = add_user(fed, fed.first, "aysel")
    console = fed.consoles[fed.first]
    browser.get(console + "/sign-in")
    wait_for(browser, "#login")
    shot(browser, "sign-in")
    sign_in(browser, console, account)
    child = fed.children[0]
    fill(browser, "name", f"{misspelt(child['given_name'])} {child['family_name']}")
    submit(browser, "search")
    link = wait_for(browser, "table a[href^='/child/']")
    assert child["given_name"] in browser.page_source
    assert child["child_id"] not in browser.current_url
    shot(browser, "search")
    link.click()
    wait_for(browser, "#record")
    assert child["family_name"] in browser.find_element(By.ID, "record").text
    assert child["given_name"] not in browser.title
    assert child["given_name"] not in browser.current_url
    shot(browser, "child")
    submit(browser, "sign-out")
    wait_for(browser, "#login")
    browser.get(console + "/search")
    wait_for(browser, "#login")  # signed out: back at the sign-in page


def test_a_name_typed_in_cyrillic_finds_the_child_written_in_latin(
    fed: ConsoleFederation, browser: WebDriver
) -> None:
    """Searching "Айсель Мамедова" finds the child registered as "Aysel Məmmədova"."""
    account = add_user(fed, fed.first, "cyrillic")
    sign_in(browser, fed.consoles[fed.first], account)
    fill(browser, "name", "Айсель Мамедова")
    submit(browser, "search")
    link = wait_for(browser, "table a[href^='/child/']")
    assert LATIN_FAMILY in link.text
