"""The accounts part of the in-memory store: console accounts in one dictionary."""

from __future__ import annotations

from childreg.errors import AlreadyExists, NotFound
from node.store.accounts import AccountStore, StoredAccount
from node.store.memory.state import MemoryBase


class MemoryAccounts(MemoryBase, AccountStore):
    """Accounts by login."""

    def insert_account(self, account: StoredAccount) -> None:
        """Add an account (AlreadyExists if the login is taken)."""
        with self._lock:
            s = self._writable()
            if account.login in s.accounts:
                raise AlreadyExists("an account with this login exists")
            s.accounts[account.login] = account

    def account(self, login: str) -> StoredAccount | None:
        """The account of ``login``, or None."""
        with self._lock:
            return self._live().accounts.get(login)

    def accounts(self) -> list[StoredAccount]:
        """Every account, ordered by login."""
        with self._lock:
            found = self._live().accounts
            return [found[login] for login in sorted(found)]

    def replace_account(self, account: StoredAccount) -> None:
        """Replace the stored account of ``account.login`` (NotFound if there is none)."""
        with self._lock:
            s = self._writable()
            if account.login not in s.accounts:
                raise NotFound("no such account")
            s.accounts[account.login] = account
