"""What every long-running childreg service does the same way: readiness and shutdown."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from grpc_health.v1 import health, health_pb2


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
