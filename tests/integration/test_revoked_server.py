"""Clients refuse a server whose certificate is revoked (issue 18, item 4): a person's
command with the deny-list in its identity directory, a node calling its witness and the
coordinator building its channels to the nodes. Real mutual-TLS servers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc
from structlog.testing import capture_logs

from childreg.audit.note import generate_signer
from childreg.authz import Authorizer
from childreg.errors import PermissionDenied
from childreg.pki import CertificateAuthority, IdentityFiles
from childreg.revocation import DENYLIST_FILE, RevocationCheck
from childreg.rpc import RotatingCredentials, make_server
from childreg.server_check import served_serial, use_for_outgoing
from coordinator.config import Department
from coordinator.rounds.channels import NodeChannels
from node.config import WitnessEndpoint
from node.rpc.witnesses import GrpcWitnesses
from tests.conftest import FEDERATION
from tools.clients.client import Endpoint

NAME = f"alpha.node.{FEDERATION}"


def serial_of(files: IdentityFiles) -> int:
    """The serial of an identity's certificate."""
    return x509.load_pem_x509_certificate(files.cert.read_bytes()).serial_number


@pytest.fixture
def own_ca(tmp_path: Path) -> CertificateAuthority:
    """A CA of its own (the tests revoke a server)."""
    ca = CertificateAuthority.create(FEDERATION, tmp_path / "ca")
    ca.revoke([])  # a first, empty deny-list
    return ca


@pytest.fixture
def server(own_ca: CertificateAuthority, tmp_path: Path) -> Iterator[tuple[IdentityFiles, int]]:
    """A mutual-TLS server of a node identity, on a port chosen by the OS."""
    identity = own_ca.issue("node", "alpha", tmp_path / "srv", dns_names=(NAME,))
    served, port = make_server(
        lambda s: None,
        tls=RotatingCredentials(identity),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION),
    )
    yield identity, port
    served.stop(None)


@pytest.fixture
def outgoing() -> Iterator[None]:
    """No serving party's deny-list registered for outgoing calls, before and after."""
    use_for_outgoing(None)
    yield
    use_for_outgoing(None)


def test_a_person_refuses_a_server_their_identity_directory_lists_as_revoked(
    own_ca: CertificateAuthority, server: tuple[IdentityFiles, int], tmp_path: Path
) -> None:
    """A person's identity issued before the server's revocation opens channels to it; one
    issued after (its directory holds the CA's new deny-list) is refused with the server's
    address and serial; with no deny-list in the directory nothing is checked."""
    identity, port = server
    address = f"127.0.0.1:{port}"
    before = own_ca.issue("auditor", "a1", tmp_path / "a1")
    assert (before.directory / DENYLIST_FILE).exists()
    Endpoint(address, before.directory, NAME).channel().close()
    assert served_serial(address, before, NAME) == serial_of(identity)

    own_ca.revoke([serial_of(identity)])
    after = own_ca.issue("auditor", "a2", tmp_path / "a2", validity=dt.timedelta(days=1))
    with capture_logs() as logs, pytest.raises(PermissionDenied, match="revoked certificate"):
        Endpoint(address, after.directory, NAME).channel()
    assert f"{serial_of(identity):x}" in str(logs)
    (after.directory / DENYLIST_FILE).unlink()
    (after.directory / "denylist.accepted.json").unlink()
    Endpoint(address, after.directory, NAME).channel().close()


def test_a_node_refuses_a_revoked_witness_and_the_coordinator_a_revoked_node(
    own_ca: CertificateAuthority,
    server: tuple[IdentityFiles, int],
    tmp_path: Path,
    outgoing: None,
) -> None:
    """With the serving party's deny-list listing the server's certificate, the node's
    witness client refuses to connect and the coordinator gives that node no channel;
    before the revocation both connect."""
    identity, port = server
    assert own_ca.directory is not None
    check = RevocationCheck(own_ca.directory / DENYLIST_FILE, own_ca.cert, FEDERATION)
    use_for_outgoing(check)
    node = own_ca.issue("node", "beta", tmp_path / "beta")
    coordinator = own_ca.issue("coordinator", "national", tmp_path / "coord")
    witness = WitnessEndpoint(
        name="w", address=f"127.0.0.1:{port}", server_name=NAME, verifier_key=_any_key()
    )
    department = Department(
        id="alpha", name="Alpha", region="shaki_zagatala", address=f"127.0.0.1:{port}",
        server_name=NAME,
    )  # fmt: skip
    with GrpcWitnesses(node).connect(witness):
        pass
    channels = NodeChannels((department,), coordinator)
    assert list(channels) == ["alpha"]

    own_ca.revoke([serial_of(identity)])
    check.refresh()
    with capture_logs(), pytest.raises(PermissionDenied), GrpcWitnesses(node).connect(witness):
        pass
    with capture_logs():
        assert list(channels) == []  # rebuilt against the new list: no channel to it
    channels.close()


def _any_key() -> str:
    """A well-formed witness verifier key (the connection is refused before any note)."""
    return generate_signer("witness.test")[1]


def test_grpc_itself_is_untouched_when_the_server_is_not_revoked(
    server: tuple[IdentityFiles, int], own_ca: CertificateAuthority, tmp_path: Path
) -> None:
    """A channel that passed the check carries calls as before (the health service answers
    UNIMPLEMENTED here, proving the call reached the server over mutual TLS)."""
    _, port = server
    person = own_ca.issue("auditor", "a3", tmp_path / "a3")
    endpoint = Endpoint(f"127.0.0.1:{port}", person.directory, NAME)
    with endpoint.channel() as channel, pytest.raises(grpc.RpcError) as failed:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED
