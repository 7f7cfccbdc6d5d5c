"""The node's RecordsService over gRPC: protobuf -> validated model -> audited domain call.

Thin on purpose: no business logic, no storage, no error handling beyond what the boundary
interceptor in ``childreg.rpc`` does for every RPC. Each method names the verified caller
as the actor (:func:`~node.rpc.convert.actor_of`) and calls the audited service
(node/audit/service.py) with the message's wire bytes as the request, and the service
appends the call's one leaf, exactly as it does for every other front door.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import grpc

from childreg.codes import ERASE_REASONS
from childreg.errors import Violation
from childreg.models import ImportRecord
from childreg.search import Registration
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from node.audit.service import Audited, Learnt
from node.consent.receipts import DepartmentReceipts, checked_language
from node.records.erasure import Erasure
from node.records.registry import Registry, SealedRow
from node.rpc import convert
from node.rpc import convert_history as history
from node.rpc.convert import actor_of
from node.rpc.import_workers import ImportWorkers

ACK = pb.Ack()
T = TypeVar("T")


def _acked(fn: Callable[[], object]) -> Callable[[], pb.Ack]:
    """``fn`` as a call that answers with an Ack."""

    def run() -> pb.Ack:
        fn()
        return ACK

    return run


def erasure_receipt_to_proto(
    erasure: Erasure, receipts: DepartmentReceipts, language: str
) -> pb.ErasureReceipt:
    """An erasure's answer: its pseudonym, time and the guardian's receipt (HTML, PDF,
    JSON) in ``language``."""
    receipt = receipts.erasure(erasure, language)
    return pb.ErasureReceipt(
        pseudonym=erasure.pseudonym,
        erased_at=erasure.erased_at,
        receipt_json=receipt.json(),
        receipt_html=receipt.html,
        receipt_pdf=receipt.pdf(),
    )


def registration_purpose(registration: Registration, reason: str | None) -> str:
    """What a RegisterChild leaf's purpose says happened: "duplicates-shown" when held back,
    "not-duplicate" when registered with a reason (never the reason itself: only the
    request's keyed digest covers it), "" otherwise."""
    if not registration.registered:
        return "duplicates-shown"
    return "not-duplicate" if reason is not None else ""


class RecordsServicer(pb_grpc.RecordsServiceServicer):
    """Department staff's access to their children's records."""

    def __init__(
        self,
        registry: Registry,
        audited: Audited,
        workers: ImportWorkers | None = None,
        receipts: DepartmentReceipts | None = None,
    ) -> None:
        self._registry = registry
        self._audited = audited
        self._workers = workers
        self._receipts = receipts or DepartmentReceipts("")

    def RegisterChild(
        self, request: pb.RegisterChildRequest, context: grpc.ServicerContext
    ) -> pb.RegisterChildReply:
        def register(learnt: Learnt) -> pb.RegisterChildReply:
            child, reason = convert.registration_request_from_proto(request)
            registration = self._registry.register_child(child, not_duplicate_reason=reason)
            learnt.purpose = registration_purpose(registration, reason)
            return convert.registration_to_proto(registration)

        return self._audited.learning(
            actor_of(context),
            "child.register",
            request.SerializeToString(),
            register,
            Learnt(child_id=request.child.child_id),
        )

    def FindChildren(
        self, request: pb.SearchRequest, context: grpc.ServicerContext
    ) -> pb.SearchReply:
        def search(learnt: Learnt) -> pb.SearchReply:
            page = self._registry.find_children(convert.search_query_from_proto(request))
            # One child found: the leaf names it (it is in that child's access report);
            # otherwise the request's keyed digest identifies what was asked.
            learnt.child_id = page.hits[0].child_id if len(page.hits) == 1 else None
            return convert.search_page_to_proto(page)

        return self._audited.disclosing(
            actor_of(context), "child.search", request.SerializeToString(), search
        )

    def CorrectChild(self, request: pb.Correction, context: grpc.ServicerContext) -> pb.Ack:
        return self._audited.change(
            actor_of(context),
            "child.correct",
            request.SerializeToString(),
            _acked(lambda: self._registry.correct_child(history.correction_from_proto(request))),
            request.child_id,
        )

    def CloseChild(self, request: pb.Closure, context: grpc.ServicerContext) -> pb.Ack:
        return self._audited.change(
            actor_of(context),
            "child.close",
            request.SerializeToString(),
            _acked(lambda: self._registry.close_child(history.closure_from_proto(request))),
            request.child_id,
        )

    def EraseChild(self, request: pb.Erasure, context: grpc.ServicerContext) -> pb.ErasureReceipt:
        def erase() -> pb.ErasureReceipt:
            checked = history.erasure_from_proto(request)
            language = checked_language(request.language)  # before anything is destroyed
            erasure = self._registry.erase_child(checked)
            # Rendered inside the transaction: the guardian's name exists only in this
            # answer, so an erasure whose receipt cannot be made is rolled back.
            return erasure_receipt_to_proto(erasure, self._receipts, language)

        return self._audited.change(
            actor_of(context),
            "child.erase",
            request.SerializeToString(),
            erase,
            request.child_id,
            purpose=request.reason if request.reason in ERASE_REASONS else "",
        )

    def GetHistory(self, request: pb.ChildRef, context: grpc.ServicerContext) -> pb.History:
        return self._audited.disclose(
            actor_of(context),
            "child.history",
            request.SerializeToString(),
            lambda: history.history_to_proto(
                self._registry.history(convert.child_ref_from_proto(request))
            ),
            request.child_id,
        )

    def RecordPlacement(self, request: pb.Placement, context: grpc.ServicerContext) -> pb.Ack:
        return self._audited.change(
            actor_of(context),
            "placement.record",
            request.SerializeToString(),
            _acked(
                lambda: self._registry.record_placement(
                    convert.placement_from_proto(request),
                    reason=history.change_reason_from_proto(request.reason),
                )
            ),
            request.child_id,
        )

    def RecordCareSetting(self, request: pb.CareSetting, context: grpc.ServicerContext) -> pb.Ack:
        return self._audited.change(
            actor_of(context),
            "care_setting.record",
            request.SerializeToString(),
            _acked(
                lambda: self._registry.record_care_setting(
                    convert.care_setting_from_proto(request),
                    reason=history.change_reason_from_proto(request.reason),
                )
            ),
            request.child_id,
        )

    def RecordAssessment(self, request: pb.Assessment, context: grpc.ServicerContext) -> pb.Ack:
        return self._audited.change(
            actor_of(context),
            "assessment.record",
            request.SerializeToString(),
            _acked(
                lambda: self._registry.record_assessment(convert.assessment_from_proto(request))
            ),
            request.child_id,
        )

    def GetChild(self, request: pb.ChildRef, context: grpc.ServicerContext) -> pb.ChildRecord:
        return self._audited.disclose(
            actor_of(context),
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
            actor_of(context),
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
    stream message as :class:`~node.rpc.convert.Received` (its bytes kept beside its parse), so
    the import's audit digest is of the messages exactly as the client sent them.

    The BulkImport handler is made with gRPC's public
    ``grpc.stream_unary_rpc_method_handler``, with :func:`~node.rpc.convert.received` as its
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
