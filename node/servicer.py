"""The node's gRPC servicers: protobuf -> validated model -> domain call -> protobuf.

Thin on purpose: no business logic, no storage, no error handling beyond what the boundary
interceptor in ``childreg.rpc`` does for every RPC.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from childreg.rpc import peer_identity
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from node import convert
from node.privacy import StatisticsDesk
from node.records import Registry

ACK = pb.Ack()


class RecordsServicer(pb_grpc.RecordsServiceServicer):
    """Department staff's access to their children's records."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def RegisterChild(self, request: pb.Child, context: grpc.ServicerContext) -> pb.Ack:
        self._registry.register_child(convert.child_from_proto(request))
        return ACK

    def UpdateChild(self, request: pb.Child, context: grpc.ServicerContext) -> pb.Ack:
        self._registry.update_child(convert.child_from_proto(request))
        return ACK

    def RecordPlacement(self, request: pb.Placement, context: grpc.ServicerContext) -> pb.Ack:
        self._registry.record_placement(convert.placement_from_proto(request))
        return ACK

    def RecordCareSetting(self, request: pb.CareSetting, context: grpc.ServicerContext) -> pb.Ack:
        self._registry.record_care_setting(convert.care_setting_from_proto(request))
        return ACK

    def RecordAssessment(self, request: pb.Assessment, context: grpc.ServicerContext) -> pb.Ack:
        self._registry.record_assessment(convert.assessment_from_proto(request))
        return ACK

    def GetChild(self, request: pb.ChildRef, context: grpc.ServicerContext) -> pb.ChildRecord:
        child_id = convert.child_ref_from_proto(request)
        return convert.child_view_to_proto(self._registry.get_child(child_id))

    def BulkImport(
        self, request_iterator: Iterator[pb.ImportBatch], context: grpc.ServicerContext
    ) -> pb.ImportSummary:
        records = convert.records_from_import_stream(request_iterator)
        return pb.ImportSummary(imported=self._registry.import_records(records))


class StatisticsServicer(spb_grpc.StatisticsServiceServicer):
    """Noisy catalogue tables for the coordinator (the desk decides; this only converts)."""

    def __init__(self, desk: StatisticsDesk) -> None:
        self._desk = desk

    def NoisyTable(
        self, request: spb.NoisyTableRequest, context: grpc.ServicerContext
    ) -> spb.NoisyTable:
        question = convert.noisy_question_from_proto(request)
        return convert.noisy_table_to_proto(self._desk.answer(question, peer_identity(context)))
