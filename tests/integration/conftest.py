"""Integration tests' log output: structlog through the standard ``logging`` module.

A server writes an RPC's log line when the call has ended (gRPC's termination callback,
childreg/rpc.py), which can be just after a test finished. Printed, such a line would land
between pytest's progress dots; through ``logging``, pytest's log capture keeps the lines
of each test and shows them with a failure. ``structlog.testing.capture_logs`` works as
before (it replaces the processors in place).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True, scope="session")
def _logs_through_logging() -> Iterator[None]:
    saved = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=False,
    )
    childreg = logging.getLogger("childreg")
    level = childreg.level
    childreg.setLevel(logging.INFO)
    yield
    childreg.setLevel(level)
    structlog.configure(**saved)
