"""What every long-running childreg service does the same way: start-up, readiness, shutdown."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

import grpc
from cryptography import x509
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from childreg.authz import Authorizer
from childreg.cert_watch import CertificateWatch
from childreg.config import ServiceSettings
from childreg.denylist_sync import DenyListKeeper, DenyListPublisher, grpc_fetch
from childreg.pki import IdentityFiles
from childreg.ratelimit import RateLimit
from childreg.revocation import STATE_FILE, RevocationCheck
from childreg.rpc import DenialHook, RotatingCredentials, make_server
from childreg.server_check import use_for_outgoing
from childreg.v1 import revocation_pb2_grpc as rpb_grpc


def write_ready_file(path: Path, address: str) -> None:
    """Tell a supervisor (the demo, a test) where the service listens, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"address": address, "pid": os.getpid()}), encoding="utf-8")
    os.replace(tmp, path)


def wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT arrives."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    stop.wait()


def bound_address(listen: str, port: int) -> str:
    """The address a client can dial after binding ``listen`` (which may say port 0)."""
    host = listen.rsplit(":", 1)[0]
    return f"{host}:{port}"


def set_health(servicer: health.HealthServicer, services: Sequence[str], serving: bool) -> None:
    """Report the server as a whole ('') and each of its services as (not) serving."""
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for service in ("", *services):
        servicer.set(service, status)


def start_grpc_service(
    settings: ServiceSettings,
    register: Callable[[grpc.Server], None],
    services: Sequence[str],
    *,
    department: str | None = None,
    on_denied: DenialHook | None = None,
    state_dir: Path | None = None,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """Start a service's mutual-TLS server the one way every childreg service starts:

    its identity (renewable without restart), the authorization table and deny-list, the
    per-caller rate limit, limits and health checking. Returns server, port and health.

    The deny-list is kept current by a :class:`~childreg.denylist_sync.DenyListKeeper`
    thread (``settings.revocation``) until the server stops; the newest list accepted is
    remembered in ``state_dir`` (the node's data directory, the coordinator's or witness's
    state directory) so a restart never goes back to an older one. A
    :class:`~childreg.cert_watch.CertificateWatch` warns before the service's certificate
    or the CA's expires.
    """
    identity = IdentityFiles(settings.identity_dir)
    ca = x509.load_pem_x509_certificate(identity.ca.read_bytes())
    federation = identity.spiffe_id().federation
    check = RevocationCheck(
        settings.denylist_file,
        ca,
        federation,
        state_file=None if state_dir is None else state_dir / STATE_FILE,
    )
    authorizer = Authorizer(federation, department=department, revoked=check)
    use_for_outgoing(check)  # this party's own calls refuse revoked servers too
    health_servicer = health.HealthServicer()
    sync = settings.revocation

    def register_all(server: grpc.Server) -> None:
        register(server)
        if sync.publish:
            rpb_grpc.add_RevocationServiceServicer_to_server(DenyListPublisher(check), server)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    server, port = make_server(
        register_all,
        tls=RotatingCredentials(identity),
        bind=settings.listen,
        authorizer=authorizer,
        rate_limit=RateLimit(settings.rate_per_second, settings.rate_burst),
        max_workers=settings.max_workers,
        on_denied=on_denied,
    )
    set_health(health_servicer, services, serving=True)
    fetch = (
        None
        if sync.publisher is None
        else grpc_fetch(identity, sync.publisher, sync.publisher_server_name)
    )
    keeper = DenyListKeeper(
        check, fetch=fetch, max_age_seconds=sync.max_age_seconds, health_servicer=health_servicer
    )
    keeper.start(server, sync.fetch_seconds)
    CertificateWatch(
        identity, warn_days=settings.certificate_warn_days, health_servicer=health_servicer
    ).start(server)
    return server, port, health_servicer
