"""Clients refuse a server whose certificate is revoked: the deny-list checked both ways.

Why: servers refuse revoked clients (childreg/authz.py), but a revoked *server* — a node
whose certificate was revoked after its host was lost, still answering with its key —
would still be talked to. gRPC's Python client exposes neither the server's certificate
nor a verification hook, so before a channel is used the client makes one TLS handshake of
its own to the same address, with its own identity and the same pinned name, reads the
certificate the server presents and checks its serial against the deny-list. A server that
cannot be reached, or whose TLS fails, is left to the gRPC call itself to report: only a
certificate seen and found revoked is refused (PermissionDenied naming the address and
serial). A server presenting another certificate to gRPC than to this check would need a
second, unrevoked certificate of that identity, which the CA would have had to issue.

Which deny-list: a serving party's own (:func:`use_for_outgoing`, registered by
childreg/service.py when it starts, so a node's calls to its witnesses and the
coordinator's to the nodes are checked); a person's command uses the ``denylist.json`` in
its identity directory if the CA put one there (``childreg pki issue`` and ``renew`` do),
remembering the newest it accepted beside it.
"""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import structlog
from cryptography import x509

from childreg.errors import PermissionDenied
from childreg.pki import IdentityFiles
from childreg.revocation import DENYLIST_FILE, RevocationCheck

__all__ = [
    "ACCEPTED_FILE",
    "check_endpoint",
    "check_server",
    "identity_check",
    "outgoing_check",
    "served_serial",
    "use_for_outgoing",
]

log = structlog.get_logger("childreg.revocation")

#: Beside a person's denylist.json: the newest list their commands accepted.
ACCEPTED_FILE = "denylist.accepted.json"

_lock = threading.Lock()
_outgoing: list[RevocationCheck] = []  # at most one: the serving party's list


def use_for_outgoing(check: RevocationCheck | None) -> None:
    """Make ``check`` the deny-list this process's outgoing calls are checked against."""
    with _lock:
        _outgoing[:] = [] if check is None else [check]


def outgoing_check() -> RevocationCheck | None:
    """The deny-list registered for outgoing calls, if any."""
    with _lock:
        return _outgoing[0] if _outgoing else None


def identity_check(identity: IdentityFiles) -> RevocationCheck | None:
    """The check a person's command uses: the ``denylist.json`` in their identity
    directory (None if there is none)."""
    path = identity.directory / DENYLIST_FILE
    if not path.exists():
        return None
    ca = x509.load_pem_x509_certificate(identity.ca.read_bytes())
    federation = identity.spiffe_id().federation
    return RevocationCheck(path, ca, federation, state_file=identity.directory / ACCEPTED_FILE)


def _host_port(address: str) -> tuple[str, int] | None:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def served_serial(
    address: str, identity: IdentityFiles, server_name: str | None, timeout: float = 10.0
) -> int | None:
    """The serial of the certificate the server at ``address`` presents to a mutual-TLS
    handshake with ``identity`` (verified against the federation CA and ``server_name``),
    or None if it cannot be reached or the handshake fails."""
    where = _host_port(address)
    if where is None:
        return None
    host, port = where
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=str(identity.ca))
        context.load_cert_chain(str(identity.cert), str(identity.key))
        context.set_alpn_protocols(["h2"])
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            context.wrap_socket(sock, server_hostname=server_name or host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError, ValueError):
        return None
    return None if der is None else x509.load_der_x509_certificate(der).serial_number


def check_server(
    address: str,
    identity: IdentityFiles,
    server_name: str | None,
    check: RevocationCheck | None,
    timeout: float = 10.0,
) -> None:
    """PermissionDenied if the server at ``address`` presents a certificate on ``check``'s
    deny-list; nothing if it does not, cannot be reached, or there is no list."""
    if check is None:
        return
    serial = served_serial(address, identity, server_name, timeout)
    if serial is not None and check.is_revoked(serial):
        log.warning("tls.server_revoked", address=address, serial=f"{serial:x}")
        raise PermissionDenied(
            f"the server at {address} presents a revoked certificate (serial {serial:x}); "
            "refusing to talk to it: ask the federation operator which address serves now"
        )


def check_endpoint(
    address: str, identity_dir: Path, server_name: str | None, timeout: float
) -> None:
    """:func:`check_server` for a person's command, with its identity directory's list."""
    identity = IdentityFiles(identity_dir)
    check_server(address, identity, server_name, identity_check(identity), timeout)
