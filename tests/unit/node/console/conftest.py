"""An in-process console over the memory store, driven with Starlette's test client.

For tests of the console's own layer (routing, sessions, CSRF, headers, sign-in); the
browser tests in tests/e2e/console/ run the real node process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pyotp
import pytest
from starlette.testclient import TestClient

from node.audit.actor import Actor
from node.audit.log import AuditLog
from node.audit.service import Audited
from node.consent.desk import ConsentDesk
from node.console.accounts import Accounts, Enrolment
from node.console.app import Console, Health, Templates, build_app
from node.console.sessions import Sessions
from node.console.settings import ConsoleSettings
from node.records.registry import Registry
from node.statistics.desk import StatisticsDesk
from node.store.memory import MemoryStore
from tests.conftest import FEDERATION, authority_key, make_keyring

PASSWORD = "correct horse battery"
OPERATOR = Actor.operator("baku", "root")


@dataclass
class Clock:
    """A clock the test moves by hand (seconds)."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    """The console, its test client and clock, and a way to add accounts."""

    console: Console
    client: TestClient
    clock: Clock
    store: MemoryStore

    def add(self, login: str, role: str = "staff", language: str = "en") -> Enrolment:
        """Add an account with :data:`PASSWORD`."""
        return self.console.accounts.add(OPERATOR, login, role, language, PASSWORD)

    def csrf(self, path: str = "/sign-in") -> str:
        """The CSRF token of the client's session, read from a form on ``path``."""
        text = self.client.get(path).text
        start = text.index('name="csrf" value="') + len('name="csrf" value="')
        return text[start : text.index('"', start)]

    def sign_in(self, enrolment: Enrolment) -> None:
        """Sign in with the password and the current TOTP code."""
        answer = self.client.post(
            "/sign-in", data={"csrf": self.csrf(), "login": enrolment.login, "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        code = pyotp.TOTP(enrolment.totp_secret).at(self.clock.now)
        answer = self.client.post(
            "/sign-in/code", data={"csrf": self.csrf("/sign-in/code"), "code": code}
        )
        assert answer.url.path == "/search", answer.text
        self.clock.now += 30  # the next sign-in needs the next code


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    """A console for department ``baku`` on an empty memory store."""
    store = MemoryStore()
    keyring = make_keyring(tmp_path)
    audit = AuditLog(store, keyring.audit_signing_seed(), federation=FEDERATION, department="baku")
    audited = Audited(store, keyring, audit)
    clock = Clock()
    settings = ConsoleSettings(
        idle_minutes=10, absolute_hours=1, lockout_failures=3, lockout_minutes=15
    )
    console = Console(
        settings=settings,
        department="baku",
        department_name="Baku City Education Department",
        store=store,
        keyring=keyring,
        registry=Registry(store, keyring, districts=("nasimi", "yasamal")),
        consents=ConsentDesk(store, keyring, FEDERATION),
        audited=audited,
        accounts=Accounts(
            store,
            audited,
            "baku",
            issuer="childreg baku",
            lockout_failures=3,
            lockout_minutes=15,
            clock=clock,
        ),
        sessions=Sessions(settings.idle_minutes * 60, settings.absolute_hours * 3600, clock),
        desk=StatisticsDesk(
            store,
            keyring.noise_secret(),
            authority_key().verify_key,
            federation=FEDERATION,
            max_snapshot_rho=Fraction(1, 4),
        ),
        max_snapshot_rho=Fraction(1, 4),
        health=Health(),
        templates=Templates(),
    )
    with TestClient(build_app(console), base_url="https://testserver") as client:
        yield Harness(console, client, clock, store)


AddFn = Callable[..., Enrolment]
