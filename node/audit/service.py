"""The audited service: every action at the node with its one audit leaf.

Why: the audit log must see every call that touches a child, whichever front door it
came through — a gRPC servicer, the web console, an operator's command. Each door
authenticates its caller and hands this service an :class:`~node.audit.actor.Actor` (a
SPIFFE id, a person's ``department-staff/<department>.<person>``, an operator's
``department-operator/<department>.<login>``); the service runs the action and appends
exactly one leaf (node/audit/log.py), so an action is the same leaf whichever door it
came through. A change's leaf commits in the change's own transaction; a read's or a
release's leaf commits before the answer is returned (write-ahead), so if the log cannot
be written the caller gets an error and no data. A refused or failed action leaves a leaf
with its status instead. Nothing here knows gRPC or protobuf (docs/design/architecture.md).

The request a leaf keeps (as a keyed digest only) is the bytes of the request as the door
received it: a gRPC door passes the message's wire bytes, an operator's command the
canonical JSON of its arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from childreg.errors import ChildregError, status_for
from node.audit.actor import Actor, acting_as
from node.audit.log import AuditLog
from node.crypto.keys import Keyring
from node.store.base import RecordStore

T = TypeVar("T")

#: The action of a leaf recording a call the boundary refused before any handler ran.
DENIED = "denied"


@dataclass
class Learnt:
    """What a call learns about its own leaf while it runs (see :meth:`Audited.learning`):
    the child it turned out to be about, the purpose and the grant reference."""

    child_id: str | None = None
    purpose: str = ""
    grant: str = ""


class Audited:
    """Runs a call with its one audit leaf (shared by every front door of the node)."""

    def __init__(self, store: RecordStore, keyring: Keyring, audit: AuditLog) -> None:
        self._store = store
        self._keyring = keyring
        self._audit = audit

    @property
    def log(self) -> AuditLog:
        """The log the leaves go to."""
        return self._audit

    def change(
        self,
        actor: Actor,
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
        learnt = Learnt(child_id, purpose, grant)
        return self.learning(actor, action, request, lambda _: fn(), learnt)

    def learning(
        self,
        actor: Actor,
        action: str,
        request: bytes | Callable[[], bytes],
        fn: Callable[[Learnt], T],
        learnt: Learnt | None = None,
    ) -> T:
        """Like :meth:`change`, for a call that learns its leaf's child, purpose and grant
        as it runs (an extract learns its child from the grant): ``fn`` fills in the
        :class:`Learnt` it is given, and the leaf — committed in ``fn``'s transaction before
        its answer is returned, or a failure leaf after the rollback — names what ``fn``
        had learnt by then.
        """
        learnt = learnt if learnt is not None else Learnt()
        try:
            with self._store.atomic(), acting_as(actor):
                result = fn(learnt)
                self._append(actor, action, _bytes(request), learnt, "OK")
        except ChildregError as exc:
            # The transaction rolled back (it wrote nothing); the refusal gets its own leaf.
            self._append(actor, action, _bytes(request), learnt, status_for(exc).name)
            raise
        return result

    def disclose(
        self,
        actor: Actor,
        action: str,
        request: bytes,
        fn: Callable[[], T],
        child_id: str | None = None,
        *,
        purpose: str = "",
        grant: str = "",
    ) -> T:
        """Compute the answer, commit its leaf, and only then return it (write-ahead)."""
        return self.disclosing(
            actor, action, request, lambda _: fn(), Learnt(child_id, purpose, grant)
        )

    def disclosing(
        self,
        actor: Actor,
        action: str,
        request: bytes,
        fn: Callable[[Learnt], T],
        learnt: Learnt | None = None,
    ) -> T:
        """Like :meth:`disclose`, for a read that learns its leaf's child as it runs (a
        search names the child when it finds exactly one): ``fn`` fills in the
        :class:`Learnt` it is given, and the leaf names what it had learnt."""
        learnt = learnt if learnt is not None else Learnt()
        try:
            with acting_as(actor):
                result = fn(learnt)
        except ChildregError as exc:
            self._append(actor, action, request, learnt, status_for(exc).name)
            raise
        self._append(actor, action, request, learnt, "OK")
        return result

    def record(self, actor: Actor, action: str, request: bytes, outcome: str = "OK") -> None:
        """Append the leaf of a call that decided its outcome itself, before it answers
        (the audit log's own reads: node/audit/reads.py)."""
        self._append(actor, action, request, Learnt(), outcome)

    def denied(self, presented: str, method: str, status: str) -> None:
        """The leaf of a call refused at the door before it ran: the identity the caller
        presented (not an authenticated actor: it may be malformed, or "-" for none, and is
        kept as presented), the method it asked for, and the refusal's status."""
        self._audit.append(actor=presented, action=DENIED, purpose=method, outcome=status)

    def _append(
        self, actor: Actor, action: str, request: bytes, learnt: Learnt, outcome: str
    ) -> None:
        self._audit.append(
            actor=actor.name,
            action=action,
            subject=self._subject(learnt.child_id),
            request=request,
            outcome=outcome,
            purpose=learnt.purpose,
            grant=learnt.grant,
        )

    def _subject(self, child_id: str | None) -> bytes | None:
        # The id as validation sees it (whitespace trimmed, like the models do), so a read
        # of " C1 " is in C1's access report.
        cleaned = child_id.strip() if child_id else ""
        return self._keyring.pseudonym(cleaned) if cleaned else None


def _bytes(request: bytes | Callable[[], bytes]) -> bytes:
    return request if isinstance(request, bytes) else request()
