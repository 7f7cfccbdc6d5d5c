"""The gRPC face of school extracts: protobuf in, the audited extract service, protobuf out.

Thin like node/rpc/records.py: the extract, its consent check and its one audit leaf are
the domain's (:class:`node.consent.extract.Extracts`, which commits the leaf before the
sealed bytes are returned). What stays here belongs to this door: the school's rate
limit, taken before any leaf, so a school over its limit cannot force a durable write per
call (the boundary's log line still records the refusal).
"""

from __future__ import annotations

import grpc

from childreg.ratelimit import RateLimiter
from childreg.v1 import consent_pb2 as cpb
from childreg.v1 import consent_pb2_grpc as cpb_grpc
from node.consent.extract import Extracts
from node.rpc.convert import actor_of


class ExtractServicer(cpb_grpc.ExtractServiceServicer):
    """Schools' access to the purpose-limited extracts their grants allow."""

    def __init__(self, extracts: Extracts, *, limiter: RateLimiter | None = None) -> None:
        self._extracts = extracts
        self._limiter = limiter

    def GetExtract(
        self, request: cpb.ExtractRequest, context: grpc.ServicerContext
    ) -> cpb.SealedExtract:
        actor = actor_of(context)
        if self._limiter is not None:
            self._limiter.take(actor.name)
        sealed = self._extracts.extract(
            actor, request.grant, request.recipient_key, request.SerializeToString()
        )
        return cpb.SealedExtract(sealed=sealed)
