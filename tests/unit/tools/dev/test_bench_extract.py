"""bench (f)'s pieces: the bare gRPC server (tools/dev/bare_grpc.py) and the percentile summary."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from childreg.rpc import secure_channel
from tests.conftest import FEDERATION, IssueFn, tls
from tools.dev.bare_grpc import BareServer
from tools.dev.bench_extract import _floor, percentile


def test_the_bare_server_answers_over_mutual_tls_only_and_stops(issue: IssueFn) -> None:
    """It serves a health check to a client of the federation, refuses a client without a
    certificate, and its process is gone once the block ends."""
    node = issue("node", "bare")
    client = issue("school", "bare-client")
    with BareServer(node.directory) as port:
        assert running("tools.dev.bare_grpc", str(node.directory))
        address = f"127.0.0.1:{port}"
        with secure_channel(address, tls(client), f"bare.node.{FEDERATION}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        anonymous = grpc.ssl_channel_credentials(node.ca.read_bytes())
        options = [("grpc.ssl_target_name_override", f"bare.node.{FEDERATION}")]
        with (
            grpc.secure_channel(address, anonymous, options=options) as channel,
            pytest.raises(grpc.RpcError),
        ):
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert not running("tools.dev.bare_grpc", str(node.directory))


def running(*words: str) -> list[int]:
    """Pids of the processes whose command line holds every one of ``words`` (Linux)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if all(any(word.encode() in arg for arg in argv) for word in words):
            found.append(int(proc.name))
    return found


def test_a_bare_server_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    """No identity there: RuntimeError, and nothing is left running."""
    server = BareServer(tmp_path / "no-identity")
    with pytest.raises(RuntimeError, match="did not start"), server:
        pass
    assert server._proc is None


def test_a_floor_is_its_median_p99_and_p99_over_the_commits_p99() -> None:
    """A floor's summary is its median and p99, and its ratio is its p99 over the commits' p99."""
    times = [i / 10_000 for i in range(1, 201)]  # 0.1 ms .. 20 ms
    got = _floor("x", times, commit_p99=0.002)
    assert got == {
        "x_p50_ms": round((times[99] + times[100]) / 2 * 1000, 2),
        "x_p99_ms": round(percentile(times, 0.99) * 1000, 2),
        "x_p99_ratio": round(percentile(times, 0.99) / 0.002, 2),
    }
    assert got["x_p99_ms"] == 19.8  # the 198th of 200 by nearest rank
