"""gRPC-stub stand-ins that call a handler in-process, for tests of one layer and benches.

Why this module exists: the coordinator's rounds call ``stub.Method.future(request,
timeout).result()``; unit and integration tests of the rounds, and the in-process rounds
of ``childreg bench`` (o) (tools/dev/bench_dropout.py), replace the network hop with a
direct call to a fake node or a real node desk. One adapter serves them all, raising a
:class:`FakeRpcError` (which carries ``code()`` like gRPC's own errors) on failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message


class FakeRpcError(grpc.RpcError):
    """What a failed call raises (gRPC's own errors also carry code())."""

    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        super().__init__(details or code.name)
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


class Call:
    """A call that already ran: ``result()`` returns its reply or raises its error."""

    def __init__(self, run: Callable[[], Message]) -> None:
        self._value: Message | None = None
        self._error: grpc.RpcError | None = None
        try:
            self._value = run()
        except grpc.RpcError as err:
            self._error = err

    def result(self) -> Message:
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


class Method:
    """One stub method: ``future(request, timeout)`` runs the handler at once."""

    def __init__(self, handler: Callable[[Any], Message]) -> None:
        self._handler = handler

    def future(self, request: Message, timeout: float) -> Call:
        return Call(lambda: self._handler(request))
