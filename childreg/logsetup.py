"""Structured logging, configured once per entry point.

JSON lines on standard error when not on a terminal (services, CI), a readable console
format on a terminal. Standard output is left to command results (``--json``). What is
logged must never hold personal data or key material: identities, methods, statuses,
durations, counts of rows — not names, dates of birth, diagnoses, or record values.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure(level: str = "info", *, json: bool | None = None) -> None:
    """Set up structlog and the stdlib root logger to write to standard error."""
    as_json = (not sys.stderr.isatty()) if json is None else json
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(message)s", force=True)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        # A logger is built once, on its first line, not again for every line (one per
        # RPC); so configure once per process, before the first line.
        cache_logger_on_first_use=True,
    )
