"""A running server picks up a renewed certificate for new connections, without a restart."""

from __future__ import annotations

import os
import socket
import ssl
import time
from functools import partial
from pathlib import Path

from cryptography import x509

from childreg.authz import Authorizer, authorizer_for
from childreg.pki import CertificateAuthority, IdentityFiles
from childreg.revocation import DENYLIST_FILE
from childreg.rpc import RotatingCredentials, TlsMaterial, make_server, secure_channel
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from coordinator.config import Department
from coordinator.rounds.channels import NodeChannels
from coordinator.rounds.federation import Federation
from tests.conftest import FEDERATION, IssueFn
from tests.integration.test_federation_round import FakeDepartment, ask


def served_serial(port: int, client: IdentityFiles, name: str) -> int:
    """The serial of the certificate the server presents to a fresh mutual-TLS connection."""
    ctx = ssl.create_default_context(cafile=str(client.ca))
    ctx.load_cert_chain(str(client.cert), str(client.key))
    ctx.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        ctx.wrap_socket(sock, server_hostname=name) as tls_sock,
    ):
        der = tls_sock.getpeercert(binary_form=True)
        assert der is not None
        assert tls_sock.version() == "TLSv1.3"
        return x509.load_der_x509_certificate(der).serial_number


def bump_mtimes(files: IdentityFiles) -> None:
    """Move the files' modification times on by a second: coarse clocks cannot hide a renewal."""
    for path in (files.ca, files.cert, files.key):
        ns = path.stat().st_mtime_ns + 1_000_000_000
        os.utime(path, ns=(ns, ns))


def serial_of(files: IdentityFiles) -> int:
    return x509.load_pem_x509_certificate(files.cert.read_bytes()).serial_number


def test_renewed_certificate_is_served_without_restart(
    ca: CertificateAuthority, issue: IssueFn, tmp_path: Path
) -> None:
    """Re-issuing the node's certificate in place changes what new connections see."""
    name = f"rot.node.{FEDERATION}"
    identity = ca.issue("node", "rot", tmp_path / "id", dns_names=(name,))
    first = serial_of(identity)
    server, port = make_server(
        lambda s: None,
        tls=RotatingCredentials(identity),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION),
    )
    try:
        client = issue("statistician", "rot-client")
        assert served_serial(port, client, name) == first
        renewed = ca.issue("node", "rot", tmp_path / "id", dns_names=(name,))
        bump_mtimes(renewed)
        second = serial_of(renewed)
        assert second != first
        assert served_serial(port, client, name) == second
    finally:
        server.stop(None)


def test_coordinator_renews_its_client_certificate_without_restart(tmp_path: Path) -> None:
    """After the coordinator's certificate is renewed and the old one revoked, rounds still work."""
    fed = "renew.childreg"
    ca = CertificateAuthority.create(fed, tmp_path / "ca")
    node_id = ca.issue("node", "alpha", tmp_path / "node", dns_names=(f"alpha.node.{fed}",))
    coord = ca.issue("coordinator", "national", tmp_path / "coord")
    fake = FakeDepartment(1)
    server, port = make_server(
        partial(spb_grpc.add_StatisticsServiceServicer_to_server, fake),
        tls=RotatingCredentials(node_id),
        bind="127.0.0.1:0",
        authorizer=authorizer_for(node_id, denylist=tmp_path / "ca" / DENYLIST_FILE),
    )
    dept = Department(
        id="alpha", address=f"127.0.0.1:{port}", server_name=f"alpha.node.{fed}", region="baku"
    )
    channels = NodeChannels((dept,), coord)
    federation = Federation(channels, deadline_seconds=5)
    try:
        assert ask(federation).complete
        old_serial = serial_of(coord)
        old_material = TlsMaterial.from_dir(coord)
        bump_mtimes(ca.issue("coordinator", "national", tmp_path / "coord"))  # renewed in place
        ca.revoke([old_serial])
        time.sleep(1.2)  # the node reloads its deny-list within a second
        result = ask(federation)
        assert result.complete, result.missing  # only the renewed certificate can pass
        old = Federation(
            {"alpha": spb_grpc.StatisticsServiceStub(
                secure_channel(dept.address, old_material, dept.server_name))},
            deadline_seconds=5,
        )  # fmt: skip
        assert ask(old).missing == ("alpha",)  # the old one is refused
    finally:
        channels.close()
        server.stop(None)
