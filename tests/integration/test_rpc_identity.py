"""The boundary reads a call's identity once and hands it on; every RPC keeps its log line.

gRPC builds a new auth context on each ``auth_context()``; the boundary reads it once per
call, derives both the claimed identity (for the rate limit and the log line) and the
verified caller (for authorization) from it, and leaves the identity on the context for
the handler's ``peer_identity``. Refused calls (rate limit, authorization) still get
exactly one log line naming the claimed identity. The line is written when the call has
ended (gRPC's termination callback), after the answer was sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import grpc
import grpc._server
import pytest
from structlog.testing import capture_logs

from childreg.authz import Authorizer
from childreg.ratelimit import RateLimit
from childreg.rpc import make_server, peer_identity, secure_channel
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from tests.conftest import FEDERATION, IssueFn, tls
from tests.rpclog import rpc_lines

STAFF = f"spiffe://{FEDERATION}/department-staff/alpha.staff"
METHOD = "/childreg.v1.RecordsService/RecordPlacement"


class Echo(pb_grpc.RecordsServiceServicer):
    """Records the identity its handler sees."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def RecordPlacement(self, request: pb.Placement, context: grpc.ServicerContext) -> pb.Ack:
        self.seen.append(peer_identity(context))
        return pb.Ack()


@pytest.fixture
def echo() -> Echo:
    """The servicer behind ``address``, fresh for each test."""
    return Echo()  # type: ignore[abstract]


@pytest.fixture
def address(issue: IssueFn, echo: Echo) -> Iterator[str]:
    """A mutual-TLS server of department alpha, rate-limited to a burst of 2, serving ``echo``."""
    server, port = make_server(
        lambda s: pb_grpc.add_RecordsServiceServicer_to_server(echo, s),
        tls=tls(issue("node", "alpha")),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION, department="alpha"),
        rate_limit=RateLimit(rate=0.001, burst=2),
    )
    yield f"127.0.0.1:{port}"
    server.stop(None)


def stub(address: str, issue: IssueFn, role: str, ident: str) -> pb_grpc.RecordsServiceStub:
    material = tls(issue(role, ident))
    return pb_grpc.RecordsServiceStub(secure_channel(address, material, f"alpha.node.{FEDERATION}"))


def test_the_auth_context_is_read_once_per_call(
    address: str, echo: Echo, issue: IssueFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One call reads the gRPC auth context once, and both its handler and its log line see the
    caller's identity."""
    reads: list[int] = []
    real = grpc._server._Context.auth_context

    def counting(self: grpc._server._Context) -> Mapping[str, Sequence[bytes]]:
        reads.append(1)
        return real(self)

    monkeypatch.setattr(grpc._server._Context, "auth_context", counting)
    with capture_logs() as logs:
        stub(address, issue, "department-staff", "alpha.staff").RecordPlacement(
            pb.Placement(child_id="c1"), timeout=5
        )
        (line,) = rpc_lines(logs, 1)
    assert len(reads) == 1
    assert echo.seen == [STAFF]
    assert (line["peer"], line["status"]) == (STAFF, "OK")


def test_refused_calls_keep_their_one_line_with_the_claimed_identity(
    address: str, echo: Echo, issue: IssueFn
) -> None:
    """A statistician may not call the method: two refusals use its burst, the third is
    refused by the rate limit before authorization; each call is one line naming it."""
    caller = stub(address, issue, "statistician", "s1")
    codes = []
    with capture_logs() as logs:
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as info:
                caller.RecordPlacement(pb.Placement(child_id="c1"), timeout=5)
            codes.append(info.value.code())
        lines = rpc_lines(logs, 3)
    assert codes == [grpc.StatusCode.PERMISSION_DENIED] * 2 + [grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert [(e["method"], e["peer"], e["status"]) for e in lines] == [
        (METHOD, f"spiffe://{FEDERATION}/statistician/s1", status)
        for status in ("PERMISSION_DENIED", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED")
    ]
    assert echo.seen == []
