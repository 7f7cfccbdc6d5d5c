"""Revocation: a CA-signed deny-list, reloaded by a running server without a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from childreg.authz import authorizer_for
from childreg.errors import InvalidInput
from childreg.pki import CertificateAuthority, IdentityFiles
from childreg.revocation import DENYLIST_FILE, verify
from childreg.rpc import make_server
from tests.conftest import tls
from tests.integration.test_authorization import METHODS, Spy, call, spy_handlers

FED = "rev.childreg"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[CertificateAuthority, str, Spy, IdentityFiles]]:
    """Its own CA (so revocations stay local), a spied node reading the CA's deny-list."""
    ca = CertificateAuthority.create(FED, tmp_path / "ca")
    node = ca.issue("node", "alpha", tmp_path / "node", dns_names=("alpha.node.rev.childreg",))
    staff = ca.issue("department-staff", "alpha.clerk", tmp_path / "staff")
    spy = Spy()
    authorizer = authorizer_for(node, department="alpha", denylist=tmp_path / "ca" / DENYLIST_FILE)
    server, port = make_server(
        lambda s: s.add_generic_rpc_handlers(spy_handlers(spy)),
        tls=tls(node),
        bind="127.0.0.1:0",
        authorizer=authorizer,
    )
    yield ca, f"127.0.0.1:{port}", spy, staff
    server.stop(None)


GET_CHILD = next(m for m in METHODS if m.name == "GetChild")


def call_until(address: str, staff: IdentityFiles, want: grpc.StatusCode) -> grpc.StatusCode:
    """Call until the wanted status appears or 5 s pass (the server reloads within a second)."""
    deadline = time.monotonic() + 5
    while True:
        code = call(address, tls(staff), GET_CHILD, server_name="alpha.node.rev.childreg")
        if code == want or time.monotonic() > deadline:
            return code
        time.sleep(0.2)


def test_revoked_certificate_is_refused_without_restart(
    world: tuple[CertificateAuthority, str, Spy, IdentityFiles],
) -> None:
    """After `revoke`, the same caller is refused by the running server; no handler runs."""
    ca, address, spy, staff = world
    assert call_until(address, staff, grpc.StatusCode.OK) == grpc.StatusCode.OK
    assert spy.ran == ["/childreg.v1.RecordsService/GetChild"]
    revoked_at = time.monotonic()
    ca.revoke([_serial(staff)])
    assert call_until(address, staff, grpc.StatusCode.PERMISSION_DENIED) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert time.monotonic() - revoked_at < 3  # reloaded within about a second
    ran = len(spy.ran)
    for _ in range(3):  # from then on the handler never runs for this caller
        code = call(address, tls(staff), GET_CHILD, server_name="alpha.node.rev.childreg")
        assert code == grpc.StatusCode.PERMISSION_DENIED
    assert len(spy.ran) == ran


def test_tampered_deny_list_is_ignored_and_the_old_one_stays(
    world: tuple[CertificateAuthority, str, Spy, IdentityFiles], tmp_path: Path
) -> None:
    """A deny-list edited without the CA's key does not verify; the last good one stays."""
    ca, address, _, staff = world
    ca.revoke([_serial(staff)])
    assert call_until(address, staff, grpc.StatusCode.PERMISSION_DENIED) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    path = tmp_path / "ca" / DENYLIST_FILE
    good = path.read_bytes()
    doc = json.loads(good)
    doc["serials"] = []  # an insider tries to un-revoke
    doc["version"] += 1
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInput):
        verify(path.read_bytes(), ca.cert)
    time.sleep(1.5)  # past the reload interval: the server has seen the tampered file
    assert call(address, tls(staff), GET_CHILD, server_name="alpha.node.rev.childreg") == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    # Reloading still works after the bad file: a genuine new list (signed, newer) takes hold.
    other = ca.issue("department-staff", "alpha.other", tmp_path / "other")
    assert call_until(address, other, grpc.StatusCode.OK) == grpc.StatusCode.OK
    path.write_bytes(good)  # the CA's own file back, so it can sign the next version
    ca.revoke([_serial(other)])
    assert call_until(address, other, grpc.StatusCode.PERMISSION_DENIED) == (
        grpc.StatusCode.PERMISSION_DENIED
    )


def _serial(files: IdentityFiles) -> int:
    return x509.load_pem_x509_certificate(files.cert.read_bytes()).serial_number
