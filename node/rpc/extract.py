"""The gRPC face of school extracts: one audit leaf per call, committed before the answer.

Why: every extract and every refusal must appear exactly once in the node's audit log
with the grant reference and outcome. :class:`~node.rpc.records.Audited` fixes the subject
before the call runs, but an extract learns its child only from the grant, so this
servicer writes its leaf itself: a refusal before the grant lookup has no subject; after
it, the leaf names the child's pseudonym and the grant reference (never the grant). The
consent check, the build and the leaf of a granted extract are one write transaction,
committed before the sealed bytes are returned (write-ahead): a withdrawal cannot fall
between check and leaf, and if the log cannot be written, the school gets an error and no
data. A refusal rolls that transaction back and is logged in a leaf of its own.
"""

from __future__ import annotations

import grpc

from childreg.errors import ChildregError, status_for
from childreg.ratelimit import RateLimiter
from childreg.rpc import peer_identity
from childreg.v1 import consent_pb2 as cpb
from childreg.v1 import consent_pb2_grpc as cpb_grpc
from node.audit.log import AuditLog
from node.consent.extract import Attempt, ExtractDesk
from node.crypto.keys import Keyring

ACTION = "extract.disclose"


class ExtractServicer(cpb_grpc.ExtractServiceServicer):
    """Schools' access to the purpose-limited extracts their grants allow."""

    def __init__(
        self,
        desk: ExtractDesk,
        audit: AuditLog,
        keyring: Keyring,
        *,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._desk = desk
        self._audit = audit
        self._keyring = keyring
        self._limiter = limiter

    def GetExtract(
        self, request: cpb.ExtractRequest, context: grpc.ServicerContext
    ) -> cpb.SealedExtract:
        actor = peer_identity(context)
        request_bytes = request.SerializeToString()
        attempt = Attempt()
        if self._limiter is not None:
            # Refused before any leaf: a school over its limit must not be able to force a
            # durable write per call (the boundary's log line still records the refusal).
            self._limiter.take(actor)
        try:
            # One write transaction from the consent check to the leaf: a withdrawal waits
            # for it (or it for the withdrawal), so the consent cannot change in between,
            # and the leaf is durable before any byte leaves (write-ahead).
            with self._desk.transaction():
                sealed, _, _ = self._desk.extract(
                    request.grant, request.recipient_key, actor, attempt
                )
                self._leaf(actor, request_bytes, attempt, "OK")
        except ChildregError as exc:
            # The transaction rolled back (it wrote nothing); the refusal gets its own leaf.
            self._leaf(actor, request_bytes, attempt, status_for(exc).name)
            raise
        return cpb.SealedExtract(sealed=sealed)

    def _leaf(self, actor: str, request: bytes, attempt: Attempt, outcome: str) -> None:
        subject = self._keyring.pseudonym(attempt.child_id) if attempt.child_id else None
        self._audit.append(
            actor=actor,
            action=ACTION,
            subject=subject,
            request=request,
            outcome=outcome,
            purpose=attempt.purpose,
            grant=attempt.grant_ref,
        )
