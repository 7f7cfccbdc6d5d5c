"""The console's accounts: who may sign in to this node's web console, and how they prove it.

Why: a commission's staff sign in as people, not with certificates. Each account belongs
to this node alone (staff of department A have no account at B), with a password kept only
as its argon2id hash and a TOTP second factor (RFC 6238, 30-second steps, one step of
clock drift either way; a code is accepted once). ``lockout_failures`` consecutive failed
sign-ins (a wrong password or a wrong code) lock the account for ``lockout_minutes``;
while locked, even the right password is refused.

Roles: ``staff`` does the daily work, ``read-only`` may look but changes nothing,
``department-admin`` does both and manages the accounts. Every change to an account is
one ``console.account`` leaf, through the audited service, naming who made it (the admin
signed in, or the operator at the node's host); every sign-in attempt on an existing
account is one ``console.sign_in`` leaf with its outcome; attempts on logins that do not
exist are one ``denied`` leaf with actor ``-`` (a mistyped login may be a person's name).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from childreg.errors import InvalidInput, NotFound, Violation
from childreg.i18n import check_language
from childreg.signed import canonical_json
from node.audit.actor import Actor
from node.audit.service import Audited
from node.store.accounts import ROLES, StoredAccount
from node.store.base import RecordStore

STAFF: Final = "staff"
ADMIN: Final = "department-admin"
READ_ONLY: Final = "read-only"
#: Roles that may change records.
CHANGERS: Final = frozenset({STAFF, ADMIN})
SIGN_IN: Final = "console.sign_in"
SIGN_OUT: Final = "console.sign_out"
ACCOUNT: Final = "console.account"
MIN_PASSWORD: Final = 12
_LOGIN: Final = re.compile(r"[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?")
_HASHER: Final = PasswordHasher()  # argon2id, RFC 9106's second recommended parameters
_DUMMY: Final = _HASHER.hash(secrets.token_urlsafe(16))  # for unknown logins: same cost


@dataclass(frozen=True)
class Enrolment:
    """What a new or reset account's person is given once: the password (when the node
    made it), the TOTP secret and its ``otpauth://`` URI (for a QR code)."""

    login: str
    role: str
    password: str | None
    totp_secret: str
    totp_uri: str


@dataclass(frozen=True)
class AccountView:
    """An account as the admin sees it (no hash, no secret)."""

    login: str
    role: str
    language: str
    disabled: bool
    locked: bool
    created_at: dt.datetime
    changed_at: dt.datetime


@dataclass(frozen=True)
class SignedIn:
    """Who passed both factors."""

    login: str
    role: str
    language: str
    changed_at: dt.datetime  # the account's, so a later reset or disable ends the session


class SignInFailed(Exception):
    """A sign-in step failed (wrong login, password or code; locked; disabled). One
    message for every cause, so the page does not tell which logins exist."""


def check_login(login: str) -> str:
    """``login`` if it is a valid account name; InvalidInput naming the field if not."""
    if not _LOGIN.fullmatch(login):
        problem = (
            "must be 1-64 lowercase letters, digits, '.', '_' or '-', starting and ending "
            "with a letter or digit"
        )
        raise InvalidInput(f"login: {problem}", [Violation("login", problem)])
    return login


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`; InvalidInput naming the field if not."""
    if role not in ROLES:
        problem = f"must be one of {', '.join(ROLES)}"
        raise InvalidInput(f"role: {problem}", [Violation("role", problem)])
    return role


def check_password(password: str) -> str:
    """``password`` if it is long enough; InvalidInput naming the field if not."""
    if len(password) < MIN_PASSWORD:
        problem = f"must be at least {MIN_PASSWORD} characters"
        raise InvalidInput(f"password: {problem}", [Violation("password", problem)])
    return password


class Accounts:
    """Adding, resetting, disabling and listing accounts; checking a sign-in."""

    def __init__(
        self,
        store: RecordStore,
        audited: Audited,
        department: str,
        *,
        issuer: str,
        lockout_failures: int = 5,
        lockout_minutes: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._audited = audited
        self._department = department
        self._issuer = issuer
        self._lockout_failures = lockout_failures
        self._lockout = dt.timedelta(minutes=lockout_minutes)
        self._clock = clock

    @property
    def lockout(self) -> tuple[int, dt.timedelta]:
        """How many failures lock an account, and for how long."""
        return self._lockout_failures, self._lockout

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    def actor(self, login: str) -> Actor:
        """The actor a signed-in person's leaves name."""
        return Actor.staff(self._department, login)

    # ----- the admin's commands ----------------------------------------------------------
    def add(
        self,
        by: Actor,
        login: str,
        role: str,
        language: str = "en",
        password: str | None = None,
    ) -> Enrolment:
        """A new account (AlreadyExists if the login is taken); one ``console.account`` leaf."""
        check_login(login)
        check_role(role)
        check_language(language)
        chosen = password if password is not None else _new_password()
        check_password(chosen)
        secret = pyotp.random_base32()
        now = self._now()
        account = StoredAccount(login, role, _HASHER.hash(chosen), secret, language, False, 0,
                                None, 0, now, now)  # fmt: skip
        self._audited.change(
            by, ACCOUNT, _request("add", login, role), lambda: self._store.insert_account(account),
            purpose="add",
        )  # fmt: skip
        return self._enrolment(account, None if password is not None else chosen)

    def reset(self, by: Actor, login: str, password: str | None = None) -> Enrolment:
        """A new password and TOTP secret; the account unlocked and enabled again."""
        chosen = password if password is not None else _new_password()
        check_password(chosen)
        secret = pyotp.random_base32()

        def reset() -> StoredAccount:
            old = self._require(login)
            new = dataclasses.replace(
                old, password_hash=_HASHER.hash(chosen), totp_secret=secret, disabled=False,
                failures=0, locked_until=None, last_totp_step=0, changed_at=self._now(),
            )  # fmt: skip
            self._store.replace_account(new)
            return new

        account = self._audited.change(by, ACCOUNT, _request("reset", login), reset,
                                       purpose="reset")  # fmt: skip
        return self._enrolment(account, None if password is not None else chosen)

    def disable(self, by: Actor, login: str) -> None:
        """The account can no longer sign in (its sessions end at their next request)."""

        def disable() -> None:
            old = self._require(login)
            self._store.replace_account(
                dataclasses.replace(old, disabled=True, changed_at=self._now())
            )

        self._audited.change(by, ACCOUNT, _request("disable", login), disable, purpose="disable")

    def list(self, by: Actor) -> list[AccountView]:
        """Every account (one ``console.account`` leaf, purpose ``list``)."""
        now = self._now()
        return self._audited.disclose(
            by,
            ACCOUNT,
            _request("list", ""),
            lambda: [_view(a, now) for a in self._store.accounts()],
            purpose="list",
        )

    def role_of(self, login: str) -> tuple[str, dt.datetime] | None:
        """The role and ``changed_at`` of an enabled account, or None (read in one go, for
        checking a session still holds)."""
        account = self._store.account(login)
        return None if account is None or account.disabled else (account.role, account.changed_at)

    # ----- signing in --------------------------------------------------------------------
    def check_password(self, login: str, password: str) -> None:
        """The first factor (SignInFailed if wrong, locked, disabled or unknown)."""
        account = self._store.account(login) if _LOGIN.fullmatch(login) else None
        if account is None:
            _verify(_DUMMY, password)  # the same work as for a real account
            self._audited.denied("-", SIGN_IN, "UNAUTHENTICATED")
            raise SignInFailed
        if not self._usable(account):
            self._outcome(account, "PERMISSION_DENIED")
            raise SignInFailed
        if not _verify(account.password_hash, password):
            self._failed(account)
            raise SignInFailed

    def check_code(self, login: str, code: str) -> SignedIn:
        """The second factor, after :meth:`check_password` passed (SignInFailed if not)."""
        account = self._store.account(login)
        if account is None or not self._usable(account):
            if account is not None:
                self._outcome(account, "PERMISSION_DENIED")
            raise SignInFailed
        step = _accepted_step(account, code.strip(), self._clock())
        if step is None:
            self._failed(account)
            raise SignInFailed
        with self._store.atomic():
            fresh = self._store.account(login)  # not the copy read before the check
            if fresh is None or step <= fresh.last_totp_step or not self._usable(fresh):
                accepted = False
            else:
                accepted = True
                account = fresh
                self._store.replace_account(
                    dataclasses.replace(fresh, failures=0, locked_until=None, last_totp_step=step)
                )
                self._outcome(fresh, "OK")
        if not accepted:  # used meanwhile (a parallel request), reset, disabled or locked
            self._failed(account)
            raise SignInFailed
        return SignedIn(account.login, account.role, account.language, account.changed_at)

    def signed_out(self, login: str) -> None:
        """The leaf of a person signing out."""
        self._audited.record(self.actor(login), SIGN_OUT, _request("sign-out", login))

    def _usable(self, account: StoredAccount) -> bool:
        locked = account.locked_until is not None and account.locked_until > self._now()
        return not account.disabled and not locked

    def _failed(self, account: StoredAccount) -> None:
        with self._store.atomic():
            # Re-read inside the transaction: parallel failures each count.
            account = self._store.account(account.login) or account
            failures = account.failures + 1
            locked = failures >= self._lockout_failures
            self._store.replace_account(
                dataclasses.replace(
                    account,
                    failures=0 if locked else failures,
                    locked_until=self._now() + self._lockout if locked else None,
                )
            )
            self._outcome(account, "UNAUTHENTICATED")

    def _outcome(self, account: StoredAccount, outcome: str) -> None:
        self._audited.record(
            self.actor(account.login), SIGN_IN, _request("sign-in", account.login), outcome
        )

    def _require(self, login: str) -> StoredAccount:
        account = self._store.account(check_login(login))
        if account is None:
            raise NotFound("no account with this login at this node")
        return account

    def _enrolment(self, account: StoredAccount, password: str | None) -> Enrolment:
        uri = pyotp.TOTP(account.totp_secret).provisioning_uri(
            name=f"{account.login}@{self._department}", issuer_name=self._issuer
        )
        return Enrolment(account.login, account.role, password, account.totp_secret, uri)


def _accepted_step(account: StoredAccount, code: str, now: float) -> int | None:
    """The time step ``code`` is valid for (this one or a neighbour), if newer than the
    last one used; None otherwise."""
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(account.totp_secret)
    current = int(now) // totp.interval
    for step in (current, current - 1, current + 1):
        if step > account.last_totp_step and secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _new_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


def _view(account: StoredAccount, now: dt.datetime) -> AccountView:
    locked = account.locked_until is not None and account.locked_until > now
    return AccountView(account.login, account.role, account.language, account.disabled, locked,
                       account.created_at, account.changed_at)  # fmt: skip


def _request(command: str, login: str, role: str = "") -> bytes:
    """An account command's arguments as its leaf's request (a keyed digest is kept)."""
    return canonical_json({"command": command, "login": login, "role": role})
