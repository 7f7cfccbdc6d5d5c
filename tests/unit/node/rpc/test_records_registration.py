"""RecordsService is served as generated, except that BulkImport keeps each message's bytes."""

from __future__ import annotations

from typing import Any, cast

import grpc

from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from node.rpc import convert
from node.rpc.records import RecordsServicer, _Handlers, register_records


class _Server(_Handlers):
    def __init__(self) -> None:
        super().__init__()
        self.generic: list[object] = []

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)


def _handlers(register: Any) -> tuple[dict[str, Any], list[object]]:
    server = _Server()
    register(object.__new__(RecordsServicer), cast("grpc.Server", server))
    return server.handlers, server.generic


def test_bulk_import_receives_each_message_with_its_bytes() -> None:
    """register_records serves the generated handlers, except that BulkImport receives each
    message together with the exact bytes it arrived as."""
    ours, generic = _handlers(register_records)
    generated, _ = _handlers(pb_grpc.add_RecordsServiceServicer_to_server)
    assert set(ours) == set(generated)
    assert len(generic) == 1
    for name, handler in generated.items():
        if name != "BulkImport":
            assert ours[name].request_deserializer == handler.request_deserializer
        assert ours[name].response_serializer == handler.response_serializer
    batch = pb.ImportBatch(last=True, total_records=1)
    batch.records.add(line=2).child.child_id = "C1"
    blob = batch.SerializeToString()
    got = ours["BulkImport"].request_deserializer(blob)
    assert got == convert.Received(blob, batch)
    assert got.blob is blob  # the bytes as they arrived, not serialized again
