"""The audited service: every action at the node with its one audit leaf.

Why: the audit log must see every call that touches a child, whichever front door it
came through — a gRPC servicer, the web console, an operator's command. Each door
authenticates its caller and hands this service an actor (a SPIFFE id, or a person's
``department-staff/<department>.<person>``); the service runs the action and appends
exactly one leaf (node/audit/log.py). A change's leaf commits in the change's own
transaction; a read's or a release's leaf commits before the answer is returned
(write-ahead), so if the log cannot be written the caller gets an error and no data. A
refused or failed action leaves a leaf with its status instead. Nothing here knows gRPC
or protobuf (docs/design/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from childreg.errors import ChildregError, status_for
from node.audit.log import AuditLog
from node.crypto.keys import Keyring
from node.store.base import RecordStore

T = TypeVar("T")


class Audited:
    """Runs a call with its one audit leaf (shared by every node servicer)."""

    def __init__(self, store: RecordStore, keyring: Keyring, audit: AuditLog) -> None:
        self._store = store
        self._keyring = keyring
        self._audit = audit

    def change(
        self,
        actor: str,
        action: str,
        request: bytes | Callable[[], bytes],
        fn: Callable[[], T],
        child_id: str | None = None,
        *,
        purpose: str = "",
        grant: str = "",
    ) -> T:
        """A change and its leaf commit together, or neither does (then a failure leaf).

        ``request`` may be a function, read after ``fn`` (a stream's digest is complete
        only once the stream was consumed).
        """
        subject = self._subject(child_id)
        try:
            with self._store.atomic():
                result = fn()
                self._audit.append(
                    actor=actor,
                    action=action,
                    subject=subject,
                    request=_bytes(request),
                    purpose=purpose,
                    grant=grant,
                )
        except ChildregError as exc:
            self._failed(actor, action, subject, _bytes(request), exc, purpose=purpose, grant=grant)
            raise
        return result

    def disclose(
        self,
        actor: str,
        action: str,
        request: bytes,
        fn: Callable[[], T],
        child_id: str | None = None,
        *,
        purpose: str = "",
        grant: str = "",
    ) -> T:
        """Compute the answer, commit its leaf, and only then return it (write-ahead)."""
        subject = self._subject(child_id)
        try:
            result = fn()
        except ChildregError as exc:
            self._failed(actor, action, subject, request, exc, purpose=purpose, grant=grant)
            raise
        self._audit.append(
            actor=actor,
            action=action,
            subject=subject,
            request=request,
            purpose=purpose,
            grant=grant,
        )
        return result

    def _subject(self, child_id: str | None) -> bytes | None:
        # The id as validation sees it (whitespace trimmed, like the models do), so a read
        # of " C1 " is in C1's access report.
        cleaned = child_id.strip() if child_id else ""
        return self._keyring.pseudonym(cleaned) if cleaned else None

    def _failed(
        self,
        actor: str,
        action: str,
        subject: bytes | None,
        request: bytes,
        exc: ChildregError,
        *,
        purpose: str = "",
        grant: str = "",
    ) -> None:
        self._audit.append(
            actor=actor,
            action=action,
            subject=subject,
            request=request,
            outcome=status_for(exc).name,
            purpose=purpose,
            grant=grant,
        )


def _bytes(request: bytes | Callable[[], bytes]) -> bytes:
    return request if isinstance(request, bytes) else request()
