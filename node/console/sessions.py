"""Server-side console sessions: the cookie holds only a random token.

Why server-side: signing out, disabling an account and the idle and absolute expiry must
end a session at once, which a self-contained cookie cannot do. A session lives in the node
process's memory only (a restart signs everyone out). Each has its own CSRF token, checked
on every form (node/console/web.py). A person who has given the right password but not yet
the TOTP code holds a session that is not ``verified``; passing the code replaces it with a
new one (a new token: no session fixation). Anonymous sessions carry the sign-in form's
CSRF token and language; at most :data:`MAX_SESSIONS` exist at once, the oldest
anonymous one dropped first (anonymous requests never sign staff out).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

MAX_SESSIONS: Final = 10_000
#: How many children a session remembers (the most recently shown).
MAX_CHILDREN: Final = 1_000


@dataclass
class Session:
    """One browser's session."""

    token: str
    csrf: str
    language: str
    created: float
    seen: float
    login: str = ""  # "" until the password was right
    role: str = ""
    verified: bool = False  # both factors passed
    #: The account's ``changed_at`` at sign-in: a reset or disable since (by the console or
    #: the CLI, another process) ends the session at its next request.
    changed_at: dt.datetime | None = None
    #: Children shown in this session: handle (random hex) -> child id, the most recent
    #: last, so no child id, name, date of birth or pseudonym ever appears in a URL.
    children: OrderedDict[str, str] = field(default_factory=OrderedDict)


class Sessions:
    """Sessions by token, with idle and absolute expiry."""

    def __init__(
        self,
        idle_seconds: float,
        absolute_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self._max = max_sessions
        self._idle = idle_seconds
        self._absolute = absolute_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._by_token: OrderedDict[str, Session] = OrderedDict()

    def open(self, language: str) -> Session:
        """A new anonymous session."""
        return self._add(self._new(language))

    def _new(self, language: str) -> Session:
        now = self._clock()
        return Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), language, now, now)

    def _add(self, session: Session) -> Session:
        """Keep ``session``; over the cap, drop the oldest anonymous (or half signed-in)
        session, never a verified one for an anonymous one (then the new one is not kept)."""
        with self._lock:
            self._by_token[session.token] = session
            while len(self._by_token) > self._max:
                oldest = next((t for t, s in self._by_token.items() if not s.verified), None)
                if oldest is None:  # all verified (so is the new one): the oldest goes
                    self._by_token.popitem(last=False)
                else:
                    del self._by_token[oldest]
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session of ``token`` (touched), or None if there is none or it expired."""
        if not token:
            return None
        now = self._clock()
        with self._lock:
            session = self._by_token.get(token)
            if session is None:
                return None
            if now - session.seen > self._idle or now - session.created > self._absolute:
                del self._by_token[token]
                return None
            session.seen = now
            return session

    def renew(self, old: Session, *, login: str, role: str, verified: bool) -> Session:
        """Replace ``old`` with a new session (new token and CSRF token) for ``login``; the
        absolute expiry counts from now."""
        new = self._new(old.language)
        new.login, new.role, new.verified = login, role, verified
        self.close(old.token)
        return self._add(new)

    def close(self, token: str) -> None:
        """End a session."""
        with self._lock:
            self._by_token.pop(token, None)
