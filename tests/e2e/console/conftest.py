"""The browser tests' fixtures: real node processes with a console, and a real Chromium.

Reused by every console browser test (this helper's and the next pages'):

- ``fed`` (module): a local federation of two departments (``A`` and ``B``), each node a
  real `childreg node serve` subprocess with a ``[console]`` section (port chosen by the
  OS, its address read from the ready file), and a few children imported into A;
- ``add_user(fed, dept, login, role, language)``: `childreg node user add` in a subprocess,
  returning the :class:`Account` (password and TOTP secret);
- ``browser`` (function): headless Chromium through chromium-driver with a fresh profile,
  trusting the federation's CA through ``--ignore-certificate-errors-spki-list`` pinned
  to the node's own certificate key (nothing else is trusted);
- ``sign_in(browser, console_url, account)``: the password and the TOTP code pyotp computes;
- ``shot(browser, name)``: a screenshot into docs/console/ when CHILDREG_SCREENSHOTS=1;
- ``axe(browser)``: runs the vendored axe-core on the page, returns serious and critical
  violations.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import shutil
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import ROOT, cli
from tools.dev.federation import LocalFederation
from tools.dev.synth import DepartmentPlan

Synthetic = tuple[list[DepartmentPlan], list[Path]]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = ROOT / "docs" / "console"
AXE = ROOT / "tests" / "vendor" / "axe.min.js"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
    "--disable-dev-shm-usage",
)
#: Console settings for every test node: a short lockout, so the security tests can see it.
CONSOLE = {
    "listen": "127.0.0.1:0",
    "lockout_failures": 3,
    "lockout_minutes": 30,
    "idle_minutes": 30,
    "absolute_hours": 8,
    "time_zone": "Asia/Baku",
}
#: The second department's console signs a person out after this idle time (minutes), so
#: a test can see a session expire; the first's is long, so slow machines never do.
SHORT_IDLE_MINUTES = 0.1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the browser tests where Chromium is missing, except in CI (which installs it)."""
    if (Path(CHROMIUM).exists() and Path(DRIVER).exists()) or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(
        reason="needs Debian's chromium and chromium-driver "
        "(apt-get install -y chromium chromium-driver)"
    )
    for item in items:
        if "tests/e2e/console" in str(item.path):
            item.add_marker(skip)


@dataclass(frozen=True)
class Account:
    """A console account made with `childreg node user add`."""

    login: str
    password: str
    totp_secret: str
    role: str


@dataclass
class ConsoleFederation:
    """The running federation and each department's console address."""

    fed: LocalFederation
    consoles: dict[str, str]
    children: list[dict[str, str]]  # the rows imported into the first department

    @property
    def first(self) -> str:
        """The first department's id."""
        return self.fed.departments[0].id

    @property
    def second(self) -> str:
        """The second department's id."""
        return self.fed.departments[1].id


#: The last imported child's names: markup a page must show as text, never run.
HOSTILE_GIVEN = "<b>Bold</b>"
HOSTILE_FAMILY = "<script>window.pwned=1</script>"
#: The second imported child's names, in Azerbaijani Latin (found by a Cyrillic search).
LATIN_GIVEN, LATIN_FAMILY = "Aysel", "Məmmədova"


def console_rows(source: Path, dst: Path, rows: int) -> Path:
    """The first ``rows`` rows of ``source``, the second child renamed to an Azerbaijani
    Latin name and the last to the hostile names."""
    with source.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        kept = [row for _, row in zip(range(rows), reader, strict=False)]
    kept[-1]["given_name"], kept[-1]["family_name"] = HOSTILE_GIVEN, HOSTILE_FAMILY
    kept[1]["given_name"], kept[1]["family_name"] = LATIN_GIVEN, LATIN_FAMILY
    with dst.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    return dst


def start_console_federation(
    root: Path,
    plans: list[DepartmentPlan],
    source: Path,
    rows: int = 12,
    console: dict[str, Any] | None = None,
) -> LocalFederation:
    """Lay out and start nodes with a console each (the second with an idle time of
    :data:`SHORT_IDLE_MINUTES`), and import ``rows`` children into the first, the last named
    :data:`HOSTILE_GIVEN` :data:`HOSTILE_FAMILY` (the caller shuts it down)."""
    fed = LocalFederation(root, plans, node_settings={"console": console or CONSOLE})
    fed.setup()
    if len(plans) > 1:
        config = fed.nodes[plans[1].id].config
        settings = tomllib.loads(config.read_text(encoding="utf-8"))
        settings["console"]["idle_minutes"] = SHORT_IDLE_MINUTES
        config.write_bytes(tomli_w.dumps(settings).encode())
    fed.start_nodes()
    ep = fed.staff_endpoint(plans[0].id)
    part = console_rows(source, root / "part.csv", rows)
    done = cli(
        "node",
        "import",
        str(part),
        "--node",
        ep.address,
        "--identity",
        str(ep.identity_dir),
        "--server-name",
        ep.server_name or "",
    )
    assert done.returncode == 0, done.stderr
    return fed


def console_address(fed: LocalFederation, dept: str) -> str:
    """The ``https://`` address a node's ready file names for its console."""
    return str(json.loads(fed.nodes[dept].ready_file.read_text())["console"])


def imported_rows(path: Path, rows: int) -> list[dict[str, str]]:
    """The first ``rows`` rows of a CSV file, as dictionaries."""
    with path.open(encoding="utf-8") as f:
        return [row for _, row in zip(range(rows), csv.DictReader(f), strict=False)]


@pytest.fixture(scope="module")
def fed(
    tmp_path_factory: pytest.TempPathFactory, synthetic: Synthetic
) -> Iterator[ConsoleFederation]:
    """Two departments' nodes with consoles; 12 children imported into the first."""
    plans, files = synthetic
    root = tmp_path_factory.mktemp("console")
    federation = start_console_federation(root / "fed", plans[:2], files[0])
    with federation:
        consoles = {p.id: console_address(federation, p.id) for p in plans[:2]}
        yield ConsoleFederation(federation, consoles, imported_rows(root / "fed" / "part.csv", 12))


def add_user(
    cf: ConsoleFederation | LocalFederation,
    dept: str,
    login: str,
    role: str = "staff",
    language: str = "en",
) -> Account:
    """`childreg node user add` at ``dept``'s node (a subprocess), with a made password."""
    fed = cf.fed if isinstance(cf, ConsoleFederation) else cf
    done = cli(
        "node",
        "user",
        "add",
        login,
        "--config",
        str(fed.nodes[dept].config),
        "--role",
        role,
        "--language",
        language,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    return Account(login, made["password"], made["totp_secret"], role)


def spki_pin(cert_file: Path) -> str:
    """The base64 SHA-256 of a certificate's public key (Chromium's SPKI pin)."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    der = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def make_browser(pins: list[str], language: str = "en") -> tuple[WebDriver, Path]:
    """A headless Chromium with a fresh profile that accepts exactly the pinned keys."""
    profile = Path(tempfile.mkdtemp(prefix="childreg-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--lang={language}")
    options.add_argument("--ignore-certificate-errors-spki-list=" + ",".join(pins))
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(120)
    return driver, profile


@pytest.fixture
def browser(fed: ConsoleFederation) -> Iterator[WebDriver]:
    """A fresh headless Chromium trusting both consoles' certificates (by key pin)."""
    pins = [spki_pin(fed.fed.identity(f"node-{d}") / "tls.crt") for d in fed.consoles]
    driver, profile = make_browser(pins)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: WebDriver, css: str, timeout: float = 60) -> Any:
    """The element ``css`` once it is on the page."""
    return WebDriverWait(driver, timeout).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def fill(driver: WebDriver, field_id: str, value: str) -> None:
    """Type ``value`` into the field with id ``field_id`` (cleared first)."""
    element = driver.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(value)


def submit(driver: WebDriver, button_id: str) -> None:
    """Click a submit button and wait for the next page to load."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, button_id).click()
    WebDriverWait(driver, 60).until(lambda _: page_replaced(old))


#: What Chromium says, as an "unknown error" rather than a stale reference, when asked
#: about an element of a document it has just replaced (seen on a loaded machine).
_REPLACED = ("does not belong to the document", "No node with given id")


def page_replaced(element: WebElement) -> bool:
    """Whether ``element``'s document has been replaced by the next page."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if any(text in str(exc) for text in _REPLACED):
            return True
        raise
    return False


def current_code(account: Account) -> str:
    """The TOTP code for now, waiting for a fresh step if this one is nearly over (a code
    is accepted once, so each sign-in of one account needs its own step)."""
    totp = pyotp.TOTP(account.totp_secret)
    used = _USED.setdefault(account.totp_secret, set())
    while True:
        step = int(time.time()) // 30
        if step not in used and time.time() % 30 < 25:
            used.add(step)
            return totp.at(step * 30)
        time.sleep(1)


_USED: dict[str, set[int]] = {}


def enter_password(driver: WebDriver, console: str, account: Account) -> None:
    """Open the sign-in page and give the login and password."""
    driver.get(console + "/sign-in")
    wait_for(driver, "#login")
    fill(driver, "login", account.login)
    fill(driver, "password", account.password)
    submit(driver, "sign-in")


def sign_in(driver: WebDriver, console: str, account: Account) -> None:
    """Sign in with the password and the TOTP code; ends on the search page."""
    code = current_code(account)  # first: it may wait, and the password step expires
    enter_password(driver, console, account)
    wait_for(driver, "#code")
    fill(driver, "code", code)
    submit(driver, "verify")
    wait_for(driver, "#sign-out")


def shot(driver: WebDriver, name: str) -> None:
    """Save a screenshot as docs/console/<name>.png when CHILDREG_SCREENSHOTS=1."""
    if os.environ.get("CHILDREG_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        size = driver.get_window_size()
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        driver.set_window_size(size["width"], min(max(height + 120, 600), 2400))
        driver.save_screenshot(str(SHOTS / f"{name}.png"))
        driver.set_window_size(size["width"], size["height"])


def axe(driver: WebDriver) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the current page."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done(r.violations)).catch(e => done([{id: 'axe-error',"
        " impact: 'critical', description: String(e)}]));"
    )
    return [v for v in result if v.get("impact") in ("serious", "critical")]
