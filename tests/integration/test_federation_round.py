"""Coordinator rounds: concurrent fan-out, exact sums, missing departments named, never hidden."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial

import grpc
import pytest

from childreg import codes
from childreg.errors import InvalidInput
from childreg.models import TableQuery
from childreg.rpc import make_server, secure_channel
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from coordinator.federation import Federation
from tests.conftest import FEDERATION, IssueFn, tls

QUERY = TableQuery(academic_year="2023/24", dimensions=("education_form", "sex"))
SIZE = codes.grid_size(QUERY.dimensions)


class FakeDepartment(spb_grpc.StatisticsServiceServicer):
    """Answers with a fixed dense table, optionally slowly or with a wrong shape."""

    def __init__(self, base: int, delay: float = 0.0, size: int = SIZE) -> None:
        self.base, self.delay, self.size = base, delay, size
        self.calls = 0
        self.release = threading.Event()

    def CountTable(
        self, request: spb.TableRequest, context: grpc.ServicerContext
    ) -> spb.CountTable:
        self.calls += 1
        if self.delay:
            self.release.wait(self.delay)
        return spb.CountTable(
            academic_year=request.academic_year,
            dimensions=list(request.dimensions),
            counts=[self.base + i for i in range(self.size)],
        )


@pytest.fixture
def departments(issue: IssueFn) -> Iterator[dict[str, tuple[FakeDepartment, str]]]:
    """Four departments on real mutual-TLS servers: two good, one slow, one malformed."""
    fakes = {
        "a": FakeDepartment(1),
        "b": FakeDepartment(100),
        "slow": FakeDepartment(5, delay=10.0),
        "bent": FakeDepartment(7, size=SIZE - 1),
    }
    servers = []
    out = {}
    for name, fake in fakes.items():
        server, port = make_server(
            partial(spb_grpc.add_StatisticsServiceServicer_to_server, fake),
            tls=tls(issue("node", name)),
            bind="127.0.0.1:0",
        )
        servers.append(server)
        out[name] = (fake, f"127.0.0.1:{port}")
    yield out
    for fake, _ in out.values():
        fake.release.set()
    for server in servers:
        server.stop(None)


def federation_of(
    names: list[str], departments: dict[str, tuple[FakeDepartment, str]], issue: IssueFn,
    deadline: float = 1.0,
) -> Federation:  # fmt: skip
    material = tls(issue("coordinator", "national"))
    stubs = {}
    for n in names:
        address = departments[n][1] if n in departments else "127.0.0.1:1"
        channel = secure_channel(address, material, f"{n}.node.{FEDERATION}")
        stubs[n] = spb_grpc.StatisticsServiceStub(channel)
    return Federation(stubs, deadline_seconds=deadline)


def test_sum_of_all_departments(
    departments: dict[str, tuple[FakeDepartment, str]], issue: IssueFn
) -> None:
    """With every department answering, the national table is the exact cell-wise sum."""
    result = federation_of(["a", "b"], departments, issue).national_table(QUERY)
    assert result.complete
    assert result.counts == [101 + 2 * i for i in range(SIZE)]
    assert result.answered == ("a", "b")


def test_slow_department_is_named_within_the_deadline(
    departments: dict[str, tuple[FakeDepartment, str]], issue: IssueFn
) -> None:
    """A department slower than the deadline is listed missing and the round ends on time."""
    started = time.monotonic()
    result = federation_of(["a", "slow", "b"], departments, issue, deadline=1.0).national_table(
        QUERY
    )
    assert time.monotonic() - started < 3.0
    assert result.missing == ("slow",)
    assert not result.complete
    assert result.counts == [101 + 2 * i for i in range(SIZE)]


def test_unreachable_and_malformed_departments_are_missing(
    departments: dict[str, tuple[FakeDepartment, str]], issue: IssueFn
) -> None:
    """A department that is down, or answers with the wrong shape, is named, not summed."""
    result = federation_of(["a", "down", "bent"], departments, issue).national_table(QUERY)
    assert set(result.missing) == {"down", "bent"}
    assert result.counts == [1 + i for i in range(SIZE)]


def test_fan_out_is_concurrent(
    departments: dict[str, tuple[FakeDepartment, str]], issue: IssueFn
) -> None:
    """Every department is asked before any answer is awaited (one deadline for all)."""
    fed = federation_of(["slow", "a", "b"], departments, issue, deadline=0.5)
    fed.national_table(QUERY)
    assert departments["a"][0].calls == 1
    assert departments["b"][0].calls == 1
    assert departments["slow"][0].calls == 1


class Refusing(spb_grpc.StatisticsServiceServicer):
    def CountTable(
        self, request: spb.TableRequest, context: grpc.ServicerContext
    ) -> spb.CountTable:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unknown dimension")


def test_invalid_question_is_an_error_not_a_missing_department(issue: IssueFn) -> None:
    """A department refusing the question as invalid fails the round with InvalidInput."""
    server, port = make_server(
        lambda s: spb_grpc.add_StatisticsServiceServicer_to_server(Refusing(), s),
        tls=tls(issue("node", "strict")),
        bind="127.0.0.1:0",
    )
    try:
        material = tls(issue("coordinator", "national"))
        channel = secure_channel(f"127.0.0.1:{port}", material, f"strict.node.{FEDERATION}")
        fed = Federation({"strict": spb_grpc.StatisticsServiceStub(channel)}, 2.0)
        with pytest.raises(InvalidInput):
            fed.national_table(QUERY)
    finally:
        server.stop(None)
