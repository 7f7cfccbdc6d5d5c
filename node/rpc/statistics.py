"""The node's StatisticsService over gRPC: protobuf -> validated question -> desk -> protobuf.

Also the secure-aggregation messages' conversions (questions in, readiness and the signed
upload out) and the upload body's wire encoding, :func:`share_body_bytes`, which the
composition root gives the aggregation desk so that it signs exactly the bytes sent.
"""

from __future__ import annotations

import grpc

from childreg.errors import FailedPrecondition, InvalidInput, Violation
from childreg.models import parse
from childreg.secagg.recovery import SEALED_BYTES, Signed
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from node.audit.service import Audited
from node.rpc import convert
from node.rpc.convert import actor_of
from node.statistics.aggregation import (
    AggregationDesk,
    Readiness,
    ReadyQuestion,
    ShareBody,
    ShareQuestion,
    SignedShare,
)
from node.statistics.desk import StatisticsDesk

#: The fields a Ready request and a Share request have in common.
_READY_FIELDS = ("signed_catalogue", "signed_roster", "table_id", "academic_year")


def ready_question_from_proto(m: spb.ReadyRequest) -> ReadyQuestion:
    """Validate a Ready request (InvalidInput naming the fields, never their values)."""
    data = {f: getattr(m, f) for f in _READY_FIELDS}
    return parse(ReadyQuestion, data, what="readiness request")


def share_question_from_proto(m: spb.ShareRequest) -> ShareQuestion:
    """Validate a Share request (InvalidInput naming the fields, never their values)."""
    data = {f: getattr(m, f) for f in _READY_FIELDS}
    data |= {
        "round_id": m.round_id,
        "participants": tuple(m.participants),
        "round_keys": tuple((k.body, k.signature) for k in m.round_keys),
        "survivors": tuple(m.survivors),
        "sealed": _sealed(m),
    }
    return parse(ShareQuestion, data, what="share request")


def _sealed(m: spb.ShareRequest) -> tuple[tuple[str, bytes], ...]:
    """(sender, share pair) of each sealed pair; InvalidInput unless one pair per sender."""
    if len(m.sealed) != SEALED_BYTES * len(m.senders):
        raise InvalidInput(
            "invalid share request",
            [Violation("sealed", f"must hold {SEALED_BYTES} bytes per sender")],
        )
    return tuple(
        (sender, m.sealed[k * SEALED_BYTES : (k + 1) * SEALED_BYTES])
        for k, sender in enumerate(m.senders)
    )


def signed_body_to_proto(message: Signed) -> spb.SignedBody:
    """Render a node's signed step message (RoundKeys, KeyShares, Unmask)."""
    return spb.SignedBody(body=message.body, signature=message.signature, blob=message.blob)


def ready_reply_to_proto(answer: Readiness) -> spb.ReadyReply:
    """Render Ready's answer."""
    return spb.ReadyReply(
        department=answer.department,
        roster_version=answer.roster_version,
        recorded_participants=list(answer.recorded_participants),
    )


def share_body_to_proto(body: ShareBody) -> spb.ShareBody:
    """The upload body as the wire message."""
    return spb.ShareBody(
        federation=body.federation,
        department=body.department,
        round_id=body.round_id,
        catalogue_version=body.catalogue_version,
        table_id=body.table_id,
        academic_year=body.academic_year,
        dimensions=list(body.dimensions),
        roster_version=body.roster_version,
        participants=list(body.participants),
        values=list(body.values),
        key_holders=list(body.key_holders),
    )


def share_body_bytes(body: ShareBody) -> bytes:
    """The bytes a node signs and sends: the ShareBody serialized deterministically."""
    return share_body_to_proto(body).SerializeToString(deterministic=True)


def masked_share_to_proto(share: SignedShare) -> spb.MaskedShare:
    """Render the signed upload."""
    return spb.MaskedShare(body=share.body, signature=share.signature)


class StatisticsServicer(spb_grpc.StatisticsServiceServicer):
    """Statistics for the coordinator (the desks decide; this only converts).

    With an :class:`AggregationDesk` the node takes part in secure aggregation only (Ready
    and Share; NoisyTable refused); without one, per department only (NoisyTable; Ready
    and Share refused). A release and a share are each one audit leaf, a refusal
    included; Ready moves no data and leaves none.
    """

    def __init__(
        self, desk: StatisticsDesk, audited: Audited, aggregation: AggregationDesk | None = None
    ) -> None:
        self._desk = desk
        self._audited = audited
        self._aggregation = aggregation

    def NoisyTable(
        self, request: spb.NoisyTableRequest, context: grpc.ServicerContext
    ) -> spb.NoisyTable:
        question = convert.noisy_question_from_proto(request)
        actor = actor_of(context)

        def answer() -> spb.NoisyTable:
            if self._aggregation is not None:
                raise FailedPrecondition(
                    "this node takes part in secure aggregation only "
                    '(aggregation = "secure"); ask it with Ready and Share'
                )
            return convert.noisy_table_to_proto(self._desk.answer(question, actor.name))

        return self._audited.disclose(
            actor,
            "statistics.release",
            request.SerializeToString(),
            answer,
            purpose=f"{question.table_id}/{question.academic_year}",
        )

    def Ready(self, request: spb.ReadyRequest, context: grpc.ServicerContext) -> spb.ReadyReply:
        question = ready_question_from_proto(request)
        return ready_reply_to_proto(self._secure().ready(question))

    def RoundKeys(self, request: spb.ShareRequest, context: grpc.ServicerContext) -> spb.SignedBody:
        question = share_question_from_proto(request)
        return signed_body_to_proto(self._secure().round_keys(question))

    def KeyShares(self, request: spb.ShareRequest, context: grpc.ServicerContext) -> spb.SignedBody:
        question = share_question_from_proto(request)
        return signed_body_to_proto(self._secure().key_shares(question))

    def Unmask(self, request: spb.ShareRequest, context: grpc.ServicerContext) -> spb.SignedBody:
        question = share_question_from_proto(request)
        actor = actor_of(context)
        return self._audited.disclose(
            actor,
            "statistics.unmask",
            request.SerializeToString(),
            lambda: signed_body_to_proto(self._secure().unmask(question)),
            purpose=f"{question.table_id}/{question.academic_year}",
        )

    def Share(self, request: spb.ShareRequest, context: grpc.ServicerContext) -> spb.MaskedShare:
        question = share_question_from_proto(request)
        actor = actor_of(context)
        return self._audited.disclose(
            actor,
            "statistics.share",
            request.SerializeToString(),
            lambda: masked_share_to_proto(self._secure().share(question, actor.name)),
            purpose=f"{question.table_id}/{question.academic_year}",
        )

    def _secure(self) -> AggregationDesk:
        if self._aggregation is None:
            raise FailedPrecondition(
                "this node answers per department only (aggregation = "
                '"per-department"); ask it with NoisyTable'
            )
        return self._aggregation
