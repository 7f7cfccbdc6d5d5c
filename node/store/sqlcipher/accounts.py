"""The accounts part of the SQLCipher store: console accounts in ``console_account``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

import sqlcipher3

from childreg.errors import AlreadyExists, NotFound
from node.store.accounts import AccountStore, StoredAccount
from node.store.sqlcipher.transaction import SqlCipherBase

_COLUMNS: Final = (
    "login, role, password_hash, totp_secret, language, disabled, failures, locked_until, "
    "last_totp_step, created_at, changed_at"
)


def _row(a: StoredAccount) -> tuple[Any, ...]:
    return (
        a.login,
        a.role,
        a.password_hash,
        a.totp_secret,
        a.language,
        int(a.disabled),
        a.failures,
        None if a.locked_until is None else a.locked_until.isoformat(),
        a.last_totp_step,
        a.created_at.isoformat(),
        a.changed_at.isoformat(),
    )


def _account_of(r: Sequence[Any]) -> StoredAccount:
    return StoredAccount(
        login=str(r[0]),
        role=str(r[1]),
        password_hash=str(r[2]),
        totp_secret=str(r[3]),
        language=str(r[4]),
        disabled=bool(r[5]),
        failures=int(r[6]),
        locked_until=None if r[7] is None else dt.datetime.fromisoformat(str(r[7])),
        last_totp_step=int(r[8]),
        created_at=dt.datetime.fromisoformat(str(r[9])),
        changed_at=dt.datetime.fromisoformat(str(r[10])),
    )


class SqlCipherAccounts(SqlCipherBase, AccountStore):
    """Console accounts, one row per login."""

    def insert_account(self, account: StoredAccount) -> None:
        """Add an account (AlreadyExists if the login is taken)."""
        self._not_viewing()
        with self._lock, self._nesting.enter(self._transaction):
            try:
                self._conn.execute(
                    f"INSERT INTO console_account({_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _row(account),
                )
            except sqlcipher3.IntegrityError:
                raise AlreadyExists("an account with this login exists") from None

    def account(self, login: str) -> StoredAccount | None:
        """The account of ``login``, or None."""
        rows = self._query(f"SELECT {_COLUMNS} FROM console_account WHERE login = ?", (login,))
        return _account_of(rows[0]) if rows else None

    def accounts(self) -> list[StoredAccount]:
        """Every account, ordered by login."""
        rows = self._query(f"SELECT {_COLUMNS} FROM console_account ORDER BY login")
        return [_account_of(r) for r in rows]

    def replace_account(self, account: StoredAccount) -> None:
        """Replace the stored account of ``account.login`` (NotFound if there is none)."""
        self._not_viewing()
        with self._lock, self._nesting.enter(self._transaction):
            cursor = self._conn.execute(
                "UPDATE console_account SET role = ?, password_hash = ?, totp_secret = ?, "
                "language = ?, disabled = ?, failures = ?, locked_until = ?, "
                "last_totp_step = ?, created_at = ?, changed_at = ? WHERE login = ?",
                (*_row(account)[1:], account.login),
            )
            if cursor.rowcount != 1:
                raise NotFound("no such account")
