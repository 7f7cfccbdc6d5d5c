"""Emergency ("break-glass") access by a department officer: always possible, never quiet.

In an emergency an officer may need a child's whole record at once, without waiting for
consent. The access requires a written reason (20–500 characters), which is kept sealed
under the child's key at the node (it may name people, so it is never in a log); the
access itself is a ``breakglass.read`` leaf naming the officer and the access's id, and
`childreg audit report` lists every one for review.
"""

from __future__ import annotations

import datetime as dt
import secrets
import unicodedata
from collections.abc import Callable

from childreg.errors import InvalidInput, Violation
from childreg.models import ChildView, text_problem
from node.crypto.keys import Keyring
from node.records.erasure import absent
from node.records.registry import Registry
from node.store.base import RecordStore, StoredBreakGlass

REASON_CONTEXT = "breakglass.reason"
MIN_REASON, MAX_REASON = 20, 500


def new_breakglass_id() -> str:
    """A fresh, unguessable id for one emergency access."""
    return "bg_" + secrets.token_hex(16)


class BreakGlassDesk:
    """Records emergency accesses and returns the record."""

    def __init__(
        self,
        store: RecordStore,
        keyring: Keyring,
        registry: Registry,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._registry = registry
        self._clock = clock

    def read(self, child_id: str, reason: str, actor: str, breakglass_id: str) -> ChildView:
        """Keep the sealed reason, then return the child's record (NotFound if unknown,
        Erased if erased)."""
        text = unicodedata.normalize("NFC", reason.strip())
        if not MIN_REASON <= len(text) <= MAX_REASON:
            raise InvalidInput(
                "an emergency access needs a reason",
                [Violation("reason", f"must be {MIN_REASON} to {MAX_REASON} characters")],
            )
        problem = text_problem(text, newlines=True)  # a written reason may have lines
        if problem is not None:
            raise InvalidInput(
                "an emergency access needs a plain reason", [Violation("reason", problem)]
            )
        cleaned = child_id.strip()
        stored = self._store.get_child(cleaned)
        if stored is None:
            raise absent(self._store, self._keyring, cleaned)
        key = self._keyring.child_key(cleaned, stored.key_version, stored.wrapped_key)
        sealed = self._keyring.seal(
            key, cleaned, f"{REASON_CONTEXT}:{breakglass_id}", text.encode("utf-8")
        )
        self._store.add_breakglass(
            StoredBreakGlass(breakglass_id, cleaned, self._clock(), actor, sealed)
        )
        return self._registry.get_child(cleaned)
