"""The RPC boundary over real mutual TLS: status mapping, BadRequest details, no leaks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from structlog.testing import capture_logs

from childreg.authz import Authorizer
from childreg.errors import InvalidInput, NotFound, Violation
from childreg.pki import CertificateAuthority
from childreg.ratelimit import RateLimit
from childreg.rpc import (
    MAX_DEADLINE_SECONDS,
    MAX_MESSAGE_BYTES,
    MORE_FIELD,
    TlsMaterial,
    make_server,
    secure_channel,
    violations_from_error,
)
from childreg.v1 import records_pb2 as pb
from childreg.v1 import records_pb2_grpc as pb_grpc
from tests.conftest import FEDERATION, IssueFn, tls
from tests.rpclog import rpc_lines

MARKER = "Zyxwvut-4711-private"


class Exploding(pb_grpc.RecordsServiceServicer):
    """A servicer whose methods fail in the ways the boundary must translate."""

    def RegisterChild(
        self, request: pb.RegisterChildRequest, context: grpc.ServicerContext
    ) -> pb.RegisterChildReply:
        raise InvalidInput(
            "invalid child",
            [Violation("date_of_birth", "not a date", line=7), Violation("sex", "unknown sex")],
        )

    def GetChild(self, request: pb.ChildRef, context: grpc.ServicerContext) -> pb.ChildRecord:
        if request.child_id == "many":
            raise InvalidInput(
                "5000 bad rows", [Violation("sex", "unknown sex", n) for n in range(5000)]
            )
        raise NotFound("no such child")

    def CorrectChild(self, request: pb.Correction, context: grpc.ServicerContext) -> pb.Ack:
        raise RuntimeError(f"database said something about {MARKER}")

    def CloseChild(self, request: pb.Closure, context: grpc.ServicerContext) -> pb.Ack:
        return pb.Ack()

    def EraseChild(self, request: pb.Erasure, context: grpc.ServicerContext) -> pb.ErasureReceipt:
        return pb.ErasureReceipt()

    def GetHistory(self, request: pb.ChildRef, context: grpc.ServicerContext) -> pb.History:
        return pb.History()

    placements = 0  # how many times the RecordPlacement handler actually ran

    def RecordPlacement(self, request: pb.Placement, context: grpc.ServicerContext) -> pb.Ack:
        type(self).placements += 1
        return pb.Ack()

    def RecordCareSetting(self, request: pb.CareSetting, context: grpc.ServicerContext) -> pb.Ack:
        return pb.Ack()

    def RecordAssessment(self, request: pb.Assessment, context: grpc.ServicerContext) -> pb.Ack:
        return pb.Ack()

    def FindChildren(
        self, request: pb.SearchRequest, context: grpc.ServicerContext
    ) -> pb.SearchReply:
        return pb.SearchReply()

    def BulkImport(
        self, request_iterator: Iterator[pb.ImportBatch], context: grpc.ServicerContext
    ) -> pb.ImportSummary:
        return pb.ImportSummary()


@pytest.fixture
def server_address(issue: IssueFn) -> Iterator[str]:
    """A real mutual-TLS server on an OS-chosen loopback port."""
    server, port = make_server(
        lambda s: pb_grpc.add_RecordsServiceServicer_to_server(Exploding(), s),
        tls=tls(issue("node", "alpha")),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION, department="alpha"),
    )
    yield f"127.0.0.1:{port}"
    server.stop(None)


def stub_for(
    address: str, material: TlsMaterial, name: str = f"alpha.node.{FEDERATION}"
) -> pb_grpc.RecordsServiceStub:
    return pb_grpc.RecordsServiceStub(secure_channel(address, material, name))


def test_invalid_input_carries_field_violations(server_address: str, issue: IssueFn) -> None:
    """InvalidInput becomes INVALID_ARGUMENT with every violation recoverable by the client."""
    stub = stub_for(server_address, tls(issue("department-staff", "alpha.staff")))
    with pytest.raises(grpc.RpcError) as info:
        stub.RegisterChild(pb.RegisterChildRequest(), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations_from_error(info.value) == [
        Violation("date_of_birth", "not a date", line=7),
        Violation("sex", "unknown sex"),
    ]


def test_domain_error_maps_through_status_table(server_address: str, issue: IssueFn) -> None:
    """NotFound raised by a handler reaches the client as NOT_FOUND with its public message."""
    stub = stub_for(server_address, tls(issue("department-staff", "alpha.staff")))
    with pytest.raises(grpc.RpcError) as info:
        stub.GetChild(pb.ChildRef(child_id="c1"), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == "no such child"


def test_unexpected_error_is_internal_without_detail(server_address: str, issue: IssueFn) -> None:
    """An unexpected exception becomes INTERNAL; its message reaches neither peer nor log."""
    stub = stub_for(server_address, tls(issue("department-staff", "alpha.staff")))
    with capture_logs() as logs, pytest.raises(grpc.RpcError) as info:
        stub.CorrectChild(pb.Correction(), timeout=5)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert MARKER not in (info.value.details() or "")
    assert MARKER not in repr(logs)
    assert any(e.get("error_type") == "RuntimeError" for e in logs)


def test_one_log_line_per_rpc_with_caller_identity(server_address: str, issue: IssueFn) -> None:
    """Each RPC logs method, verified caller identity, status and duration, and nothing else."""
    stub = stub_for(server_address, tls(issue("department-staff", "alpha.staff")))
    with capture_logs() as logs:
        stub.RecordPlacement(pb.Placement(child_id="c-secret-1"), timeout=5)
        lines = rpc_lines(logs, 1)  # written when the call has ended
    assert len(lines) == 1
    line = lines[0]
    assert line["peer"] == f"spiffe://{FEDERATION}/department-staff/alpha.staff"
    assert line["method"] == "/childreg.v1.RecordsService/RecordPlacement"
    assert line["status"] == "OK"
    assert set(line) == {"event", "log_level", "method", "peer", "status", "duration_ms"}


def test_client_without_certificate_is_refused(server_address: str, issue: IssueFn) -> None:
    """A TLS client presenting no certificate cannot complete a call."""
    ca_pem = issue("node", "alpha").ca.read_bytes()
    creds = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    channel = grpc.secure_channel(
        server_address,
        creds,
        options=[("grpc.ssl_target_name_override", f"alpha.node.{FEDERATION}")],
    )
    with pytest.raises(grpc.RpcError) as info:
        pb_grpc.RecordsServiceStub(channel).RecordPlacement(pb.Placement(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_client_from_another_ca_is_refused(
    server_address: str, issue: IssueFn, tmp_path: Path
) -> None:
    """A certificate from a different CA is rejected by the server's mutual TLS."""
    other = CertificateAuthority.create("other.childreg", tmp_path / "ca")
    stranger = other.issue("department-staff", "mallory", tmp_path / "mallory")
    material = TlsMaterial(
        ca=issue("node", "alpha").ca.read_bytes(),
        cert=stranger.cert.read_bytes(),
        key=stranger.key.read_bytes(),
    )
    with pytest.raises(grpc.RpcError) as info:
        stub_for(server_address, material).RecordPlacement(pb.Placement(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_server_name_is_pinned(server_address: str, issue: IssueFn) -> None:
    """A client expecting another node's name refuses this server's certificate."""
    stub = stub_for(
        server_address, tls(issue("department-staff", "alpha.staff")), f"beta.node.{FEDERATION}"
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.RecordPlacement(pb.Placement(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_material_repr_hides_keys(issue: IssueFn) -> None:
    """Printing TLS material never shows the private key."""
    material = tls(issue("statistician", "s1"))
    assert b"PRIVATE" in material.key
    assert "PRIVATE" not in repr(material)


def test_calls_without_a_deadline_are_refused(server_address: str, issue: IssueFn) -> None:
    """A call with no deadline, or one beyond the maximum, is refused before the handler runs."""
    stub = stub_for(server_address, tls(issue("department-staff", "alpha.staff")))
    before = Exploding.placements
    for timeout in (None, MAX_DEADLINE_SECONDS * 2):
        with pytest.raises(grpc.RpcError) as info:
            stub.RecordPlacement(pb.Placement(), timeout=timeout)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "deadline" in (info.value.details() or "")
    assert Exploding.placements == before  # refused before the handler ran
    stub.RecordPlacement(pb.Placement(), timeout=MAX_DEADLINE_SECONDS / 2)
    assert Exploding.placements == before + 1


def test_thousands_of_violations_fit_the_metadata_limit(
    server_address: str, issue: IssueFn
) -> None:
    """5000 violations arrive as INVALID_ARGUMENT with a readable prefix and a count of the rest."""
    stub = stub_for(server_address, tls(issue("department-staff", "alpha.staff")))
    with pytest.raises(grpc.RpcError) as info:
        stub.GetChild(pb.ChildRef(child_id="many"), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    got = violations_from_error(info.value)
    assert 50 < len(got) < 5000
    assert got[0] == Violation("sex", "unknown sex", 0)
    assert got[-1].field == MORE_FIELD
    assert got[-1].problem == f"{5000 - (len(got) - 1)} more not listed"


def test_oversized_request_is_resource_exhausted(server_address: str, issue: IssueFn) -> None:
    """A request larger than the server's maximum message size is refused as RESOURCE_EXHAUSTED
    by the server (the client here has no send limit of its own)."""
    material = tls(issue("department-staff", "alpha.staff"))
    creds = grpc.ssl_channel_credentials(material.ca, material.key, material.cert)
    options = [
        ("grpc.ssl_target_name_override", f"alpha.node.{FEDERATION}"),
        ("grpc.max_send_message_length", -1),
    ]
    stub = pb_grpc.RecordsServiceStub(grpc.secure_channel(server_address, creds, options))
    huge = pb.Placement(child_id="c", institution="x" * (MAX_MESSAGE_BYTES + 1024))
    with pytest.raises(grpc.RpcError) as info:
        stub.RecordPlacement(huge, timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "CLIENT" not in (info.value.details() or "")  # refused by the server, not locally


def test_a_caller_over_its_rate_is_refused_and_others_are_not(issue: IssueFn) -> None:
    """Past its burst a caller gets RESOURCE_EXHAUSTED; a second caller is still served."""
    server, port = make_server(
        lambda s: pb_grpc.add_RecordsServiceServicer_to_server(Exploding(), s),
        tls=tls(issue("node", "alpha")),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION, department="alpha"),
        rate_limit=RateLimit(rate=0.01, burst=3),
    )
    try:
        address = f"127.0.0.1:{port}"
        noisy = stub_for(address, tls(issue("department-staff", "alpha.noisy")))
        for _ in range(3):
            noisy.RecordPlacement(pb.Placement(), timeout=5)
        with pytest.raises(grpc.RpcError) as info:
            noisy.RecordPlacement(pb.Placement(), timeout=5)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        quiet = stub_for(address, tls(issue("department-staff", "alpha.quiet")))
        quiet.RecordPlacement(pb.Placement(), timeout=5)
        # Refused calls are charged too: a role with no rights cannot flood the server.
        school = stub_for(address, tls(issue("school", "flooder")))
        codes = []
        for _ in range(4):
            with pytest.raises(grpc.RpcError) as refused:
                school.RecordPlacement(pb.Placement(), timeout=5)
            codes.append(refused.value.code())
        assert codes == [grpc.StatusCode.PERMISSION_DENIED] * 3 + [
            grpc.StatusCode.RESOURCE_EXHAUSTED
        ]
    finally:
        server.stop(None)
