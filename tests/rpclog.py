"""Waiting for the boundary's per-RPC log lines, which are written when a call has ended.

The server writes a call's ``rpc`` line from gRPC's termination callback, so a client can
hold the answer a moment before the line exists; tests wait for it (never for long).
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

LogEntry = MutableMapping[str, Any]


def rpc_lines(
    logs: Sequence[LogEntry],
    count: int,
    *,
    where: Callable[[LogEntry], bool] = lambda e: True,
    timeout: float = 5.0,
) -> list[LogEntry]:
    """The ``rpc`` lines in ``logs`` (matching ``where``), once ``count`` of them are there
    and a moment has passed for any extra one to show up."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [e for e in logs if e.get("event") == "rpc" and where(e)]
        if len(lines) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    time.sleep(0.05)  # an extra line (which would be a bug) has time to appear
    return [e for e in logs if e.get("event") == "rpc" and where(e)]
