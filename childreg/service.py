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
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from childreg.authz import authorizer_for
from childreg.config import ServiceSettings
from childreg.pki import IdentityFiles
from childreg.ratelimit import RateLimit
from childreg.rpc import DenialHook, RotatingCredentials, make_server


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
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """Start a service's mutual-TLS server the one way every childreg service starts:

    its identity (renewable without restart), the authorization table and deny-list, the
    per-caller rate limit, limits and health checking. Returns server, port and health.
    """
    identity = IdentityFiles(settings.identity_dir)
    authorizer = authorizer_for(identity, department=department, denylist=settings.denylist_file)
    health_servicer = health.HealthServicer()

    def register_all(server: grpc.Server) -> None:
        register(server)
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
    return server, port, health_servicer
