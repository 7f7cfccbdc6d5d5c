"""The node's StatisticsService over gRPC: protobuf -> validated question -> desk -> protobuf."""

from __future__ import annotations

import grpc

from childreg.errors import FailedPrecondition
from childreg.rpc import peer_identity
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from node.audit.service import Audited
from node.rpc import convert
from node.statistics.aggregation import (
    AggregationDesk,
    ready_question_from_proto,
    share_question_from_proto,
)
from node.statistics.desk import StatisticsDesk


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

        def answer() -> spb.NoisyTable:
            if self._aggregation is not None:
                raise FailedPrecondition(
                    "this node takes part in secure aggregation only "
                    '(aggregation = "secure"); ask it with Ready and Share'
                )
            return convert.noisy_table_to_proto(self._desk.answer(question, peer_identity(context)))

        return self._audited.disclose(
            peer_identity(context),
            "statistics.release",
            request.SerializeToString(),
            answer,
            purpose=f"{question.table_id}/{question.academic_year}",
        )

    def Ready(self, request: spb.ReadyRequest, context: grpc.ServicerContext) -> spb.ReadyReply:
        question = ready_question_from_proto(request)
        return self._secure().ready(question)

    def Share(self, request: spb.ShareRequest, context: grpc.ServicerContext) -> spb.MaskedShare:
        question = share_question_from_proto(request)
        return self._audited.disclose(
            peer_identity(context),
            "statistics.share",
            request.SerializeToString(),
            lambda: self._secure().share(question, peer_identity(context)),
            purpose=f"{question.table_id}/{question.academic_year}",
        )

    def _secure(self) -> AggregationDesk:
        if self._aggregation is None:
            raise FailedPrecondition(
                "this node answers per department only (aggregation = "
                '"per-department"); ask it with NoisyTable'
            )
        return self._aggregation
