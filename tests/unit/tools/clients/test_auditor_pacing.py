"""The auditor waits and tries again while the node's per-caller rate limit refuses a call
(RESOURCE_EXHAUSTED), and gives up with the refusal after PACE_TRIES; other errors at once."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from tools.clients import auditor
from tools.clients.client import EXIT_REFUSED, CliError, Endpoint

ENDPOINT = Endpoint("127.0.0.1:1", Path("/nonexistent"), None, 1.0)


class Refusal(grpc.RpcError):
    """A failed call as grpc raises it: a status code and details."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        """The status."""
        return self._code

    def details(self) -> str:
        """What the server said."""
        return "rate limit: at most 50 calls per second per caller"


class Method:
    """A unary method refused ``refusals`` times with ``code``, then answering "ok"."""

    def __init__(self, refusals: int, code: grpc.StatusCode) -> None:
        self.calls = 0
        self.refusals = refusals
        self.code = code

    def __call__(self, request: str, timeout: float | None = None) -> str:
        self.calls += 1
        if self.calls <= self.refusals:
            raise Refusal(self.code)
        return "ok"


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits the auditor made (none really slept)."""
    made: list[float] = []
    monkeypatch.setattr("tools.clients.auditor.time.sleep", made.append)
    return made


def test_a_rate_limited_call_is_paced_until_it_passes(waits: list[float]) -> None:
    """Three refusals then an answer: the answer, after three growing waits."""
    method = Method(3, grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert auditor.paced(ENDPOINT, "entries", method, "req") == "ok"  # type: ignore[arg-type]
    assert method.calls == 4
    assert waits == sorted(waits)
    assert len(waits) == 3


def test_pacing_gives_up_after_its_tries(waits: list[float]) -> None:
    """Refused every time: PACE_TRIES calls, then the refusal as a CliError."""
    method = Method(1000, grpc.StatusCode.RESOURCE_EXHAUSTED)
    with pytest.raises(CliError) as caught:
        auditor.paced(ENDPOINT, "entries", method, "req")  # type: ignore[arg-type]
    assert caught.value.code == EXIT_REFUSED
    assert method.calls == auditor.PACE_TRIES
    assert max(waits) <= auditor.PACE_MOST


def test_other_failures_are_not_retried(waits: list[float]) -> None:
    """PERMISSION_DENIED fails at the first call, with no wait."""
    method = Method(1, grpc.StatusCode.PERMISSION_DENIED)
    with pytest.raises(CliError):
        auditor.paced(ENDPOINT, "entries", method, "req")  # type: ignore[arg-type]
    assert (method.calls, waits) == (1, [])
