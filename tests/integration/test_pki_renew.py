"""`childreg pki renew` (issue 18, item 3): a certificate renewed before it expires keeps its
identity, and a running server serves the renewed one without a restart."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from structlog.testing import capture_logs
from typer.testing import CliRunner

from childreg.authz import Authorizer
from childreg.errors import PermissionDenied
from childreg.pki import CertificateAuthority, IdentityFiles
from childreg.rpc import RotatingCredentials, make_server
from tests.conftest import FEDERATION, IssueFn
from tests.integration.test_rotation import bump_mtimes, served_serial
from tools.cli.main import app


def cert_of(files: IdentityFiles) -> x509.Certificate:
    """The certificate in an identity directory."""
    return x509.load_pem_x509_certificate(files.cert.read_bytes())


def public_der(cert: x509.Certificate) -> bytes:
    """The certificate's public key, DER."""
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def renew_cli(
    files: IdentityFiles, ca_dir: Path, *extra: str
) -> tuple[int, str, BaseException | None]:
    """`childreg pki renew DIR --ca-dir CA --json` (and ``extra``)."""
    args = ["pki", "renew", str(files.directory), "--ca-dir", str(ca_dir), "--json", *extra]
    with capture_logs():
        result = CliRunner().invoke(app, args)
    return result.exit_code, result.stdout, result.exception


@pytest.fixture
def own_ca(tmp_path: Path) -> CertificateAuthority:
    """A CA of its own (this test revokes certificates)."""
    return CertificateAuthority.create(FEDERATION, tmp_path / "ca")


def test_a_renewed_certificate_keeps_the_identity_names_and_key(
    own_ca: CertificateAuthority, tmp_path: Path
) -> None:
    """`pki renew` gives a new serial and a later end for the same SPIFFE id, DNS names,
    addresses, usages and key, leaves tls.key untouched, writes the certificate readable by
    all, and `pki list` shows both."""
    assert own_ca.directory is not None
    files = own_ca.issue(
        "node",
        "alpha",
        tmp_path / "id",
        dns_names=("alpha.node.test",),
        ip_addresses=("127.0.0.1",),
        validity=dt.timedelta(days=10),
    )
    old, key_before = cert_of(files), files.key.read_bytes()
    code, out, exc = renew_cli(files, own_ca.directory)
    assert code == 0, exc
    summary = json.loads(out)
    new = cert_of(files)
    assert summary["spiffe_id"] == f"spiffe://{FEDERATION}/node/alpha"
    assert summary["new_serial"] == f"{new.serial_number:x}" != f"{old.serial_number:x}"
    assert new.not_valid_after_utc > old.not_valid_after_utc
    for ext in (x509.SubjectAlternativeName, x509.ExtendedKeyUsage):
        assert new.extensions.get_extension_for_class(ext).value == (
            old.extensions.get_extension_for_class(ext).value
        )
    assert public_der(new) == public_der(old)
    assert files.key.read_bytes() == key_before
    assert files.cert.stat().st_mode & 0o777 == 0o644  # a certificate is public
    new.verify_directly_issued_by(own_ca.cert)
    with capture_logs():
        listed = CliRunner().invoke(
            app, ["pki", "list", "--ca-dir", str(own_ca.directory), "--json"]
        )
    serials = {row["serial"] for row in json.loads(listed.stdout)}
    assert {f"{old.serial_number:x}", f"{new.serial_number:x}"} <= serials


def test_a_revoked_or_foreign_certificate_is_not_renewed(
    own_ca: CertificateAuthority, tmp_path: Path, issue: IssueFn
) -> None:
    """A certificate on the CA's deny-list is refused (issue a new identity instead), and
    so is one another CA issued; neither file changes."""
    assert own_ca.directory is not None
    files = own_ca.issue("school", "s1", tmp_path / "school")
    own_ca.revoke([cert_of(files).serial_number])
    before = files.cert.read_bytes()
    code, _, exc = renew_cli(files, own_ca.directory)
    assert code != 0
    assert isinstance(exc, PermissionDenied)
    assert "revoked" in str(exc)
    assert files.cert.read_bytes() == before
    foreign = issue("school", "s2")  # issued by the session's CA, not own_ca
    before = foreign.cert.read_bytes()
    code, _, exc = renew_cli(foreign, own_ca.directory)
    assert isinstance(exc, PermissionDenied)
    assert "not issued by this CA" in str(exc)
    assert foreign.cert.read_bytes() == before


def test_a_running_server_serves_the_renewed_certificate_without_restart(
    ca: CertificateAuthority, issue: IssueFn, tmp_path: Path
) -> None:
    """A server started on an identity serves, to new connections, the certificate `pki
    renew` wrote (same key), then the one `pki renew --new-key` wrote (new key), with no
    restart; a key written without its certificate is not picked up half-way."""
    assert ca.directory is not None
    name = f"renew.node.{FEDERATION}"
    identity = ca.issue("node", "renew", tmp_path / "id", dns_names=(name,))
    credentials = RotatingCredentials(identity)
    server, port = make_server(
        lambda s: None, tls=credentials, bind="127.0.0.1:0", authorizer=Authorizer(FEDERATION)
    )
    try:
        client = issue("statistician", "renew-client")
        assert served_serial(port, client, name) == cert_of(identity).serial_number
        for extra in ((), ("--new-key",)):
            code, _, exc = renew_cli(identity, ca.directory, *extra)
            assert code == 0, exc
            bump_mtimes(identity)
            assert served_serial(port, client, name) == cert_of(identity).serial_number
        other = ca.issue("node", "other", tmp_path / "other", dns_names=(name,))
        identity.key.write_bytes(other.key.read_bytes())  # a key without its certificate
        bump_mtimes(identity)
        assert credentials.fetch() is None
    finally:
        server.stop(None)
