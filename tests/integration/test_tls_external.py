"""An outside client (`openssl s_client`) sees TLS 1.3 and a server demanding a certificate."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from childreg.authz import Authorizer
from childreg.pki import IdentityFiles
from childreg.rpc import make_server
from tests.conftest import FEDERATION, IssueFn, tls

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.fixture
def node(issue: IssueFn) -> Iterator[tuple[int, IdentityFiles]]:
    """A node-shaped mutual-TLS server (no services needed to test the handshake)."""
    files = issue("node", "tls")
    server, port = make_server(
        lambda s: None, tls=tls(files), bind="127.0.0.1:0", authorizer=Authorizer(FEDERATION)
    )
    yield port, files
    server.stop(None)


def s_client(port: int, files: IdentityFiles, *extra: str) -> tuple[int | None, str]:
    """Run openssl s_client, send the HTTP/2 preface, keep reading; (exit code or None, output)."""
    argv = [
        str(OPENSSL), "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(files.ca),
        "-servername", f"tls.node.{FEDERATION}", "-alpn", "h2", "-ign_eof", *extra,
    ]  # fmt: skip
    try:
        r = subprocess.run(argv, input=H2_PREFACE, capture_output=True, timeout=5, check=False)
    except subprocess.TimeoutExpired as exc:  # the server kept the connection: it accepted us
        out = (exc.stdout or b"") + (exc.stderr or b"")
        return None, out.decode(errors="replace")
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def test_tls13_and_a_client_certificate_is_demanded(
    node: tuple[int, IdentityFiles], issue: IssueFn
) -> None:
    """Without a certificate the server drops the session; with one it keeps it; both TLS 1.3."""
    port, files = node
    code, out = s_client(port, files)
    assert "New, TLSv1.3" in out
    assert "Verify return code: 0 (ok)" in out  # the server's certificate is from our CA
    assert code == 1
    assert "unexpected eof" in out  # dropped right after the handshake: no certificate
    staff = issue("statistician", "tls-client")
    code, out = s_client(port, files, "-cert", str(staff.cert), "-key", str(staff.key))
    assert "New, TLSv1.3" in out
    assert "unexpected eof" not in out
    assert code in (None, 0)
