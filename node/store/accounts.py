"""The accounts part of a store: the people who sign in to the node's web console.

Why here: accounts are per node (staff of department A have no account at B), kept in the
node's own encrypted store beside what they give access to, and changed together with the
audit leaf of the change. The store keeps a password only as its argon2id hash and the
TOTP secret only inside the encrypted database; it never sees a password.
"""

from __future__ import annotations

import datetime as dt
from abc import abstractmethod
from dataclasses import dataclass
from typing import Final

from node.store.transactional import Transactional

#: The roles an account may have (node/console/accounts.py says what each may do).
ROLES: Final = ("staff", "department-admin", "read-only")


@dataclass(frozen=True)
class StoredAccount:
    """One console account as stored: no password, only its hash."""

    login: str
    role: str
    password_hash: str
    totp_secret: str  # base32
    language: str
    disabled: bool
    failures: int  # consecutive failed sign-ins since the last success
    locked_until: dt.datetime | None
    last_totp_step: int  # the last TOTP time step accepted (a code is never used twice)
    created_at: dt.datetime
    changed_at: dt.datetime


class AccountStore(Transactional):
    """Where a node keeps its console accounts.

    Contract (every implementation), besides :class:`~node.store.transactional.Transactional`'s:

    - ``insert_account`` MUST raise :class:`childreg.errors.AlreadyExists` (changing
      nothing) when the login is taken.
    - ``account`` returns the account of a login, or None.
    - ``accounts`` returns every account, ordered by login.
    - ``replace_account`` MUST make the stored account of ``account.login`` exactly the
      given one, and raise :class:`childreg.errors.NotFound` (changing nothing) for an
      unknown login.
    """

    @abstractmethod
    def insert_account(self, account: StoredAccount) -> None:
        """Add an account (AlreadyExists if the login is taken)."""

    @abstractmethod
    def account(self, login: str) -> StoredAccount | None:
        """The account of ``login``, or None."""

    @abstractmethod
    def accounts(self) -> list[StoredAccount]:
        """Every account, ordered by login."""

    @abstractmethod
    def replace_account(self, account: StoredAccount) -> None:
        """Replace the stored account of ``account.login`` (NotFound if there is none)."""
