"""The console's accounts (node/console/accounts.py): what is stored, what each command
leaves in the log, and how a sign-in is checked."""

from __future__ import annotations

import pyotp
import pytest
from argon2 import PasswordHasher

from childreg.audit.leaf import AuditEvent
from childreg.errors import AlreadyExists, InvalidInput, NotFound
from node.console.accounts import SignInFailed
from tests.unit.node.console.conftest import OPERATOR, PASSWORD, Harness


def events(harness: Harness) -> list[AuditEvent]:
    """Every leaf of the log."""
    return [AuditEvent.from_bytes(b) for b in harness.console.audited.log.leaves()]


def test_an_added_account_keeps_only_an_argon2id_hash(harness: Harness) -> None:
    """The store holds an argon2id hash that verifies the password, never the password."""
    harness.add("aysel")
    stored = harness.store.account("aysel")
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in repr(stored)
    assert PasswordHasher().verify(stored.password_hash, PASSWORD)


def test_each_account_command_leaves_one_leaf_naming_the_operator(harness: Harness) -> None:
    """add, reset, disable and list each leave one console.account leaf, no login in clear."""
    accounts = harness.console.accounts
    harness.add("aysel")
    accounts.reset(OPERATOR, "aysel")
    accounts.disable(OPERATOR, "aysel")
    accounts.list(OPERATOR)
    found = [(e.action, e.purpose, e.actor, e.outcome) for e in events(harness)]
    actor = "department-operator/baku.root"
    assert found == [
        ("console.account", p, actor, "OK") for p in ("add", "reset", "disable", "list")
    ]
    assert all("aysel" not in e.request for e in events(harness))


def test_a_made_password_is_long_and_a_given_one_must_be(harness: Harness) -> None:
    """Without a password one of 20 characters is made; a short one is refused by field."""
    made = harness.console.accounts.add(OPERATOR, "murad", "staff")
    assert made.password is not None
    assert len(made.password) >= 20
    with pytest.raises(InvalidInput) as refused:
        harness.console.accounts.add(OPERATOR, "zaur", "staff", password="short")
    assert [v.field for v in refused.value.violations] == ["password"]
    assert harness.store.account("zaur") is None


@pytest.mark.parametrize(("login", "role"), [("Bad Login", "staff"), ("ok", "superuser")])
def test_a_bad_login_or_role_is_refused_by_field(harness: Harness, login: str, role: str) -> None:
    """A login outside the naming rule or an unknown role is refused, naming the field."""
    with pytest.raises(InvalidInput) as refused:
        harness.console.accounts.add(OPERATOR, login, role, password=PASSWORD)
    assert refused.value.violations[0].field in ("login", "role")
    assert harness.store.accounts() == []


def test_a_login_is_added_once_and_an_unknown_one_is_not_reset(harness: Harness) -> None:
    """A second add of a login is refused; resetting an unknown login is NotFound."""
    harness.add("aysel")
    with pytest.raises(AlreadyExists):
        harness.add("aysel")
    with pytest.raises(NotFound):
        harness.console.accounts.reset(OPERATOR, "ghost")


def test_reset_gives_new_credentials_and_unlocks(harness: Harness) -> None:
    """After a reset the old password and secret fail, the new ones sign in, even if locked."""
    accounts = harness.console.accounts
    old = harness.add("aysel")
    for _ in range(3):
        with pytest.raises(SignInFailed):
            accounts.check_password("aysel", "wrong wrong wrong")
    accounts.disable(OPERATOR, "aysel")
    new = accounts.reset(OPERATOR, "aysel", "another long password")
    assert new.totp_secret != old.totp_secret
    with pytest.raises(SignInFailed):
        accounts.check_password("aysel", PASSWORD)
    accounts.check_password("aysel", "another long password")
    code = pyotp.TOTP(new.totp_secret).at(harness.clock.now)
    assert accounts.check_code("aysel", code).role == "staff"


def test_sign_in_attempts_leave_leaves_with_their_outcome(harness: Harness) -> None:
    """A wrong password, a right code and an unknown login leave their outcomes, no names."""
    accounts = harness.console.accounts
    enrolment = harness.add("aysel")
    with pytest.raises(SignInFailed):
        accounts.check_password("aysel", "wrong wrong wrong")
    accounts.check_password("aysel", PASSWORD)
    accounts.check_code("aysel", pyotp.TOTP(enrolment.totp_secret).at(harness.clock.now))
    with pytest.raises(SignInFailed):
        accounts.check_password("Someone Typed A Name", PASSWORD)
    found = [(e.action, e.actor, e.outcome) for e in events(harness)][1:]
    assert found == [
        ("console.sign_in", "department-staff/baku.aysel", "UNAUTHENTICATED"),
        ("console.sign_in", "department-staff/baku.aysel", "OK"),
        ("denied", "-", "UNAUTHENTICATED"),
    ]


def test_a_code_read_against_a_stale_account_is_accepted_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second use of one code is refused even when its first read predates the first use."""
    enrolment = harness.add("aysel")
    accounts, store = harness.console.accounts, harness.store
    stale, read = store.account("aysel"), store.account
    code = pyotp.TOTP(enrolment.totp_secret).at(harness.clock.now)
    accounts.check_code("aysel", code)
    reads = iter([stale])  # the parallel request read the account before the first use
    monkeypatch.setattr(store, "account", lambda login: next(reads, None) or read(login))
    with pytest.raises(SignInFailed):
        accounts.check_code("aysel", code)


def test_failures_read_against_a_stale_account_each_count(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wrong passwords whose first read predates the others' writes still lock the account."""
    harness.add("aysel")
    accounts, store = harness.console.accounts, harness.store
    stale, read = store.account("aysel"), store.account
    count = iter(range(1_000))
    monkeypatch.setattr(
        store, "account", lambda login: stale if next(count) % 2 == 0 else read(login)
    )
    for _ in range(3):
        with pytest.raises(SignInFailed):
            accounts.check_password("aysel", "wrong password here")
    monkeypatch.undo()
    held = store.account("aysel")
    assert held is not None
    assert held.locked_until is not None
