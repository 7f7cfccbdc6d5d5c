"""The node's gRPC servicers: protobuf -> validated model -> domain call -> protobuf.

Thin on purpose: no business logic, no storage, no error handling beyond what the boundary
interceptor in ``childreg.rpc`` does for every RPC — except the audit log, which must see
every call that touches a child: each RPC appends exactly one leaf (node/audit.py). A
change's leaf commits in the change's own transaction; a read's or a release's leaf
commits before the answer is returned (write-ahead), so if the log cannot be written the
caller gets an error and no data. A refused or failed call leaves a leaf with its
status instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import grpc

from childreg.errors import ChildregError, FailedPrecondition, Violation, status_for
from childreg.models import ImportRecord
from childreg.rpc import peer_identity
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from node import convert
from node.aggregation import (
    AggregationDesk,
    ready_question_from_proto,
    share_question_from_proto,
)
from node.audit import AuditLog
from node.import_workers import ImportWorkers
from node.keys import Keyring
from node.privacy import StatisticsDesk
from node.records import Registry, SealedRow
from node.store.base import RecordStore

ACK = pb.Ack()
T = TypeVar("T")


class Audited:
    """Runs a call with its one audit leaf (shared by every node servicer)."""

    def __init__(self, store: RecordStore, keyring: Keyring, audit: AuditLog) -> None:
        self._store = store
        self._keyring = keyring
        self._audit = audit

    def change(
        self,
        context: grpc.ServicerContext,
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
        actor = peer_identity(context)
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
        context: grpc.ServicerContext,
        action: str,
        request: bytes,
        fn: Callable[[], T],
        child_id: str | None = None,
        *,
        purpose: str = "",
        grant: str = "",
    ) -> T:
        """Compute the answer, commit its leaf, and only then return it (write-ahead)."""
        actor = peer_identity(context)
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


def _acked(fn: Callable[[], object]) -> Callable[[], pb.Ack]:
    """``fn`` as a call that answers with an Ack."""

    def run() -> pb.Ack:
        fn()
        return ACK

    return run


def _bytes(request: bytes | Callable[[], bytes]) -> bytes:
    return request if isinstance(request, bytes) else request()


class RecordsServicer(pb_grpc.RecordsServiceServicer):
    """Department staff's access to their children's records."""

    def __init__(
        self, registry: Registry, audited: Audited, workers: ImportWorkers | None = None
    ) -> None:
        self._registry = registry
        self._audited = audited
        self._workers = workers

    def RegisterChild(self, request: pb.Child, context: grpc.ServicerContext) -> pb.Ack:
        return self._audited.change(
            context,
            "child.register",
            request.SerializeToString(),
            _acked(lambda: self._registry.register_child(convert.child_from_proto(request))),
            request.child_id,
        )

    def UpdateChild(self, request: pb.Child, context: grpc.ServicerContext) -> pb.Ack:
        return self._audited.change(
            context,
            "child.update",
            request.SerializeToString(),
            _acked(lambda: self._registry.update_child(convert.child_from_proto(request))),
            request.child_id,
        )

    def RecordPlacement(self, request: pb.Placement, context: grpc.ServicerContext) -> pb.Ack:
        return self._audited.change(
            context,
            "placement.record",
            request.SerializeToString(),
            _acked(lambda: self._registry.record_placement(convert.placement_from_proto(request))),
            request.child_id,
        )

    def RecordCareSetting(self, request: pb.CareSetting, context: grpc.ServicerContext) -> pb.Ack:
        return self._audited.change(
            context,
            "care_setting.record",
            request.SerializeToString(),
            _acked(
                lambda: self._registry.record_care_setting(convert.care_setting_from_proto(request))
            ),
            request.child_id,
        )

    def RecordAssessment(self, request: pb.Assessment, context: grpc.ServicerContext) -> pb.Ack:
        return self._audited.change(
            context,
            "assessment.record",
            request.SerializeToString(),
            _acked(
                lambda: self._registry.record_assessment(convert.assessment_from_proto(request))
            ),
            request.child_id,
        )

    def GetChild(self, request: pb.ChildRef, context: grpc.ServicerContext) -> pb.ChildRecord:
        return self._audited.disclose(
            context,
            "child.read",
            request.SerializeToString(),
            lambda: convert.child_view_to_proto(
                self._registry.get_child(convert.child_ref_from_proto(request))
            ),
            request.child_id,
        )

    def BulkImport(  # type: ignore[override]  # messages come as received (register_records)
        self, request_iterator: Iterator[convert.Received], context: grpc.ServicerContext
    ) -> pb.ImportSummary:
        digest = hashlib.sha256()  # of the stream's messages, as the client sent them

        def hashed() -> Iterator[convert.Received]:
            for item in request_iterator:
                digest.update(item.blob)
                yield item

        records = self._records(hashed())  # reads the whole stream
        return self._audited.change(
            context,
            "records.import",
            digest.digest,
            lambda: pb.ImportSummary(imported=self._registry.import_records(records)),
        )

    def _records(
        self, batches: Iterator[convert.Received]
    ) -> Iterator[ImportRecord | SealedRow | list[Violation]]:
        """The stream's rows: sealed by the workers if they are running when the import
        starts (inside its transaction), else validated here and sealed by the registry."""
        workers = self._workers
        if workers is not None and workers.running:
            yield from workers.rows(convert.import_stream(batches))
        else:
            yield from convert.records_from_import_stream(batches)


class _Handlers:
    """Stands in for a server to collect a generated ``add_*_to_server``'s method handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self.handlers = dict(handlers)


def register_records(servicer: RecordsServicer, server: grpc.Server) -> None:
    """Serve ``servicer`` as the generated code would, except that BulkImport receives each
    stream message as :class:`~node.convert.Received` (its bytes kept beside its parse), so
    the import's audit digest is of the messages exactly as the client sent them.

    The BulkImport handler is made with gRPC's public
    ``grpc.stream_unary_rpc_method_handler``, with :func:`~node.convert.received` as its
    request deserializer; every other method keeps the generated handler.
    """
    collected = _Handlers()
    pb_grpc.add_RecordsServiceServicer_to_server(servicer, cast("grpc.Server", collected))
    handlers = collected.handlers
    handlers["BulkImport"] = grpc.stream_unary_rpc_method_handler(
        servicer.BulkImport,
        request_deserializer=convert.received,
        response_serializer=pb.ImportSummary.SerializeToString,
    )
    service = pb.DESCRIPTOR.services_by_name["RecordsService"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)  # type: ignore[attr-defined]  # stubs


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
            context,
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
            context,
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
