"""Authorization: every RPC × every role against the one table, and refused certificates.

A spy stands in for every handler, so a refusal is proven to happen before any handler
runs. The servers are real mutual-TLS gRPC servers on OS-chosen loopback ports.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from structlog.testing import capture_logs

from childreg.authz import RULES, Authorizer
from childreg.pki import ROLES, CertificateAuthority, IdentityFiles
from childreg.rpc import TlsMaterial, make_server, secure_channel
from childreg.v1 import audit_pb2, consent_pb2, records_pb2, revocation_pb2, statistics_pb2
from tests.conftest import FEDERATION, IssueFn, tls

DEPARTMENT = "alpha"
SERVER_NAME = f"{DEPARTMENT}.node.{FEDERATION}"
SERVICES = [
    *records_pb2.DESCRIPTOR.services_by_name.values(),
    *statistics_pb2.DESCRIPTOR.services_by_name.values(),
    *audit_pb2.DESCRIPTOR.services_by_name.values(),
    *consent_pb2.DESCRIPTOR.services_by_name.values(),
    *revocation_pb2.DESCRIPTOR.services_by_name.values(),
]
METHODS: list[MethodDescriptor] = [m for s in SERVICES for m in s.methods]


def full_name(m: MethodDescriptor) -> str:
    return f"/{m.containing_service.full_name}/{m.name}"


@dataclass
class Spy:
    """Records which methods' handlers actually ran."""

    ran: list[str] = field(default_factory=list)


def spy_handlers(spy: Spy) -> list[grpc.GenericRpcHandler[Any, Any]]:
    """A generic handler per service whose every method records itself and answers empty."""
    handlers = []
    for service in SERVICES:
        table: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        for m in service.methods:
            req = message_factory.GetMessageClass(m.input_type)
            resp = message_factory.GetMessageClass(m.output_type)
            name = full_name(m)

            def unary(request: Any, context: Any, name: str = name, resp: Any = resp) -> Any:
                spy.ran.append(name)
                return resp()

            def streamed(
                it: Iterator[Any], context: Any, name: str = name, resp: Any = resp
            ) -> Any:
                spy.ran.append(name)
                return resp()

            make = (
                grpc.stream_unary_rpc_method_handler
                if m.client_streaming
                else grpc.unary_unary_rpc_method_handler
            )
            table[m.name] = make(
                streamed if m.client_streaming else unary,
                request_deserializer=req.FromString,
                response_serializer=resp.SerializeToString,
            )
        handlers.append(grpc.method_handlers_generic_handler(service.full_name, table))
    return handlers


@pytest.fixture
def spied(issue: IssueFn) -> Iterator[tuple[str, Spy]]:
    """A server hosting every childreg service with spies, as department alpha's node."""
    spy = Spy()
    server, port = make_server(
        lambda s: s.add_generic_rpc_handlers(spy_handlers(spy)),
        tls=tls(issue("node", DEPARTMENT)),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION, department=DEPARTMENT),
    )
    yield f"127.0.0.1:{port}", spy
    server.stop(None)


def call(
    address: str, material: TlsMaterial, m: MethodDescriptor, server_name: str = SERVER_NAME
) -> grpc.StatusCode:
    """Call one method with an empty request; the resulting status code."""
    channel = secure_channel(address, material, server_name)
    req = message_factory.GetMessageClass(m.input_type)
    resp = message_factory.GetMessageClass(m.output_type)
    try:
        if m.client_streaming:
            stub = channel.stream_unary(
                full_name(m), request_serializer=req.SerializeToString,
                response_deserializer=resp.FromString,
            )  # fmt: skip
            stub(iter([req()]), timeout=5)
        else:
            channel.unary_unary(
                full_name(m), request_serializer=req.SerializeToString,
                response_deserializer=resp.FromString,
            )(req(), timeout=5)  # fmt: skip
    except grpc.RpcError as err:
        return err.code()
    finally:
        channel.close()
    return grpc.StatusCode.OK


def identity_for(role: str, issue: IssueFn) -> IdentityFiles:
    ident = f"{DEPARTMENT}.clerk" if role == "department-staff" else f"{role}-1"
    return issue(role, ident)


def test_every_rpc_is_in_the_table() -> None:
    """The table names exactly the RPCs of our services (plus health) — none is left out."""
    ours = {full_name(m) for m in METHODS}
    assert ours <= set(RULES)
    assert set(RULES) - ours == {"/grpc.health.v1.Health/Check"}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_authorization_matrix(
    spied: tuple[str, Spy], issue: IssueFn, role: str, method: MethodDescriptor
) -> None:
    """Each role reaches exactly the methods the table allows; refusals never run a handler."""
    address, spy = spied
    code = call(address, tls(identity_for(role, issue)), method)
    if role in RULES[full_name(method)]:
        assert code == grpc.StatusCode.OK
        assert spy.ran == [full_name(method)]
    else:
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert spy.ran == []


def test_staff_of_another_department_are_refused(spied: tuple[str, Spy], issue: IssueFn) -> None:
    """Department staff of beta cannot use alpha's node, even for a staff-only method."""
    address, spy = spied
    get_child = next(m for m in METHODS if m.name == "GetChild")
    assert call(address, tls(issue("department-staff", "beta.clerk")), get_child) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert spy.ran == []


def forge(
    ca: CertificateAuthority,
    out: Path,
    *,
    uris: tuple[str, ...] = (f"spiffe://{FEDERATION}/department-staff/{DEPARTMENT}.clerk",),
    client_auth: bool = True,
    not_before: dt.timedelta = dt.timedelta(minutes=-5),
    not_after: dt.timedelta = dt.timedelta(hours=1),
) -> TlsMaterial:
    """A certificate signed by the real CA but shaped wrongly in one way."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else [ExtendedKeyUsageOID.SERVER_AUTH]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forged")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + not_before)
        .not_valid_after(now + not_after)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]),
            critical=False,
        )
        .sign(ca._key, hashes.SHA256())  # test-only: the CA's private key signs a bad shape
    )
    return TlsMaterial(
        ca=ca.cert_pem,
        cert=cert.public_bytes(serialization.Encoding.PEM),
        key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("two_uris", grpc.StatusCode.PERMISSION_DENIED),
        ("no_client_auth", grpc.StatusCode.UNAVAILABLE),
        ("other_federation", grpc.StatusCode.PERMISSION_DENIED),
        ("expired", grpc.StatusCode.UNAVAILABLE),
        ("not_yet_valid", grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_bad_certificates_are_refused_before_any_handler(
    spied: tuple[str, Spy], ca: CertificateAuthority, tmp_path: Path, case: str,
    expected: grpc.StatusCode,
) -> None:  # fmt: skip
    """Two URI SANs, no clientAuth, another federation, expired or not yet valid: refused.

    TLS itself rejects what it can check (validity, key usage), the authorizer the rest;
    either way no handler runs.
    """
    address, spy = spied
    staff = f"spiffe://{FEDERATION}/department-staff/{DEPARTMENT}.clerk"
    cases: dict[str, dict[str, Any]] = {
        "two_uris": {"uris": (staff, f"spiffe://{FEDERATION}/coordinator/national")},
        "no_client_auth": {"client_auth": False},
        "other_federation": {"uris": (f"spiffe://other.fed/department-staff/{DEPARTMENT}.x",)},
        "expired": {"not_before": dt.timedelta(days=-2), "not_after": dt.timedelta(days=-1)},
        "not_yet_valid": {"not_before": dt.timedelta(days=1), "not_after": dt.timedelta(days=2)},
    }
    material = forge(ca, tmp_path, **cases[case])
    get_child = next(m for m in METHODS if m.name == "GetChild")
    assert call(address, material, get_child) == expected
    assert spy.ran == []


def test_no_certificate_or_another_ca_never_reaches_a_handler(
    spied: tuple[str, Spy], issue: IssueFn, tmp_path: Path
) -> None:
    """No certificate, or one from another CA: the handshake fails and no handler runs."""
    address, spy = spied
    get_child = next(m for m in METHODS if m.name == "GetChild")
    ca_pem = issue("node", DEPARTMENT).ca.read_bytes()
    channel = grpc.secure_channel(
        address,
        grpc.ssl_channel_credentials(root_certificates=ca_pem),
        options=[("grpc.ssl_target_name_override", SERVER_NAME)],
    )
    stub = channel.unary_unary(
        full_name(get_child),
        request_serializer=records_pb2.ChildRef.SerializeToString,
        response_deserializer=records_pb2.ChildRecord.FromString,
    )
    with pytest.raises(grpc.RpcError) as info:
        stub(records_pb2.ChildRef(child_id="x"), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    other = CertificateAuthority.create(FEDERATION, tmp_path / "other-ca")
    stranger = other.issue("department-staff", f"{DEPARTMENT}.clerk", tmp_path / "stranger")
    material = TlsMaterial(
        ca=ca_pem, cert=stranger.cert.read_bytes(), key=stranger.key.read_bytes()
    )
    assert call(address, material, get_child) == grpc.StatusCode.UNAVAILABLE
    assert spy.ran == []


def test_denials_are_logged_with_caller_and_reason(spied: tuple[str, Spy], issue: IssueFn) -> None:
    """A refused call leaves a log line naming the caller, the method and why."""
    address, _ = spied
    count_table = next(m for m in METHODS if m.name == "NoisyTable")
    with capture_logs() as logs:
        call(address, tls(issue("school", "school-7")), count_table)
    denied = [e for e in logs if e["event"] == "rpc.denied"]
    assert len(denied) == 1
    assert denied[0]["peer"] == f"spiffe://{FEDERATION}/school/school-7"
    assert denied[0]["method"] == full_name(count_table)
    assert "school" in denied[0]["reason"]
