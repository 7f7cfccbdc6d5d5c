"""The accounts part of the store contract (node/store/accounts.py), on both stores.

An account is added once per login, read back exactly, listed by login, replaced as a
whole only when it exists, and a rolled-back block leaves the accounts as they were.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from childreg.errors import AlreadyExists, NotFound
from node.store.base import RecordStore, StoredAccount

NOW = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)


def account(login: str = "aysel", **changes: object) -> StoredAccount:
    """An account with sensible defaults."""
    made = StoredAccount(
        login=login,
        role="staff",
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        totp_secret="JBSWY3DPEHPK3PXP",
        language="az",
        disabled=False,
        failures=0,
        locked_until=None,
        last_totp_step=0,
        created_at=NOW,
        changed_at=NOW,
    )
    return dataclasses.replace(made, **changes)  # type: ignore[arg-type]


def test_an_account_reads_back_exactly(store: RecordStore) -> None:
    """An inserted account is read back field for field, and an unknown login gives None."""
    locked = account(failures=3, locked_until=NOW + dt.timedelta(minutes=15), disabled=True)
    store.insert_account(locked)
    assert store.account("aysel") == locked
    assert store.account("nobody") is None


def test_a_login_is_taken_once(store: RecordStore) -> None:
    """A second account with the same login is refused and the first is kept."""
    store.insert_account(account())
    with pytest.raises(AlreadyExists):
        store.insert_account(account(role="department-admin"))
    assert store.account("aysel") == account()


def test_accounts_are_listed_by_login(store: RecordStore) -> None:
    """Every account is listed, ordered by login."""
    for login in ("zaur", "aysel", "murad"):
        store.insert_account(account(login))
    assert [a.login for a in store.accounts()] == ["aysel", "murad", "zaur"]


def test_an_account_is_replaced_as_a_whole(store: RecordStore) -> None:
    """replace_account makes the stored account exactly the given one."""
    store.insert_account(account())
    changed = account(role="read-only", failures=2, last_totp_step=99, language="ru",
                      changed_at=NOW + dt.timedelta(hours=1))  # fmt: skip
    store.replace_account(changed)
    assert store.account("aysel") == changed


def test_replacing_an_unknown_account_is_refused(store: RecordStore) -> None:
    """replace_account of a login with no account gives NotFound and adds nothing."""
    with pytest.raises(NotFound):
        store.replace_account(account("ghost"))
    assert store.accounts() == []


def test_a_rolled_back_block_keeps_the_accounts(store: RecordStore) -> None:
    """Account writes inside a failed atomic() block are undone."""
    store.insert_account(account())

    def fail() -> None:
        with store.atomic():
            store.replace_account(account(disabled=True))
            store.insert_account(account("murad"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    assert store.accounts() == [account()]
