"""Coordinator rounds: concurrent fan-out, vectors kept as sent, missing departments named."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial

import grpc
import pytest

from childreg import codes
from childreg.authz import Authorizer
from childreg.rpc import make_server, secure_channel
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc
from coordinator.rounds.federation import Federation, RoundResult
from tests.conftest import FEDERATION, IssueFn, tls

DIMS = ("education_form", "sex")
SIZE = codes.grid_size(DIMS)
QUERY = spb.NoisyTableRequest(
    signed_catalogue=b"(opaque to the round)", table_id="form_by_sex", academic_year="2023/24"
)
BENDS = ("short", "huge", "dims", "year", "version", "table")


class StageOneOnly(spb_grpc.StatisticsServiceServicer):
    """A stage-1 node: it refuses the secure-aggregation calls, as a real one does."""

    def Ready(self, request: spb.ReadyRequest, context: grpc.ServicerContext) -> spb.ReadyReply:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "per-department aggregation only")

    def Share(self, request: spb.ShareRequest, context: grpc.ServicerContext) -> spb.MaskedShare:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "per-department aggregation only")

    def RoundKeys(self, request: spb.ShareRequest, context: grpc.ServicerContext) -> spb.SignedBody:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "per-department aggregation only")

    def KeyShares(self, request: spb.ShareRequest, context: grpc.ServicerContext) -> spb.SignedBody:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "per-department aggregation only")

    def Unmask(self, request: spb.ShareRequest, context: grpc.ServicerContext) -> spb.SignedBody:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "per-department aggregation only")


class FakeDepartment(StageOneOnly):
    """Answers with a fixed dense table, optionally slowly or bent in one way."""

    def __init__(self, base: int, delay: float = 0.0, bend: str = "") -> None:
        self.base, self.delay, self.bend = base, delay, bend
        self.calls = 0
        self.release = threading.Event()

    def NoisyTable(
        self, request: spb.NoisyTableRequest, context: grpc.ServicerContext
    ) -> spb.NoisyTable:
        self.calls += 1
        if self.delay:
            self.release.wait(self.delay)
        counts = [self.base + i - 3 for i in range(SIZE)]  # noisy: some negative
        dims, year, version, table = list(DIMS), request.academic_year, 1, request.table_id
        if self.bend == "short":
            counts = counts[:-1]
        elif self.bend == "huge":
            counts[0] = 2**62
        elif self.bend == "dims":
            dims = dims[::-1]
        elif self.bend == "year":
            year = "2022/23"
        elif self.bend == "version":
            version = 2
        elif self.bend == "table":
            table = "another_table"
        return spb.NoisyTable(
            catalogue_version=version,
            table_id=table,
            academic_year=year,
            dimensions=dims,
            counts=counts,
        )


@pytest.fixture
def departments(issue: IssueFn) -> Iterator[dict[str, tuple[FakeDepartment, str]]]:
    """Departments on real mutual-TLS servers: two good, two hanging, one per malformation."""
    fakes = {
        "a": FakeDepartment(1),
        "b": FakeDepartment(100),
        "slow": FakeDepartment(5, delay=10.0),
        "slow2": FakeDepartment(6, delay=10.0),
        **{f"bent-{b}": FakeDepartment(7, bend=b) for b in BENDS},
    }
    servers = []
    out = {}
    for name, fake in fakes.items():
        server, port = make_server(
            partial(spb_grpc.add_StatisticsServiceServicer_to_server, fake),
            tls=tls(issue("node", name)),
            bind="127.0.0.1:0",
            authorizer=Authorizer(FEDERATION),
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


def ask(fed: Federation) -> RoundResult:
    """One round for the test table."""
    return fed.noisy_round(QUERY, catalogue_version=1, dimensions=DIMS)


def vector(base: int) -> list[int]:
    """What FakeDepartment(base) answers."""
    return [base + i - 3 for i in range(SIZE)]


def test_sum_of_all_departments(
    departments: dict[str, tuple[FakeDepartment, str]], issue: IssueFn
) -> None:
    """With every department answering, every department's vector is kept as sent."""
    result = ask(federation_of(["a", "b"], departments, issue))
    assert result.complete
    assert result.vectors == {"a": vector(1), "b": vector(100)}


def test_slow_department_is_named_within_the_deadline(
    departments: dict[str, tuple[FakeDepartment, str]], issue: IssueFn
) -> None:
    """A department slower than the deadline is listed missing and the round ends on time."""
    started = time.monotonic()
    result = ask(federation_of(["a", "slow", "b"], departments, issue, deadline=1.0))
    assert time.monotonic() - started < 3.0
    assert result.missing == ("slow",)
    assert not result.complete
    assert set(result.vectors) == {"a", "b"}


@pytest.mark.parametrize("bend", ["down", *BENDS])
def test_unreachable_and_malformed_departments_are_missing(
    departments: dict[str, tuple[FakeDepartment, str]], issue: IssueFn, bend: str
) -> None:
    """A department that is down, or answers short, huge, reordered, for another year,
    catalogue version or table, is named missing and not used."""
    name = "down" if bend == "down" else f"bent-{bend}"
    result = ask(federation_of(["a", name], departments, issue))
    assert result.missing == (name,)
    assert result.reasons[name] == ("UNAVAILABLE" if bend == "down" else "bad_shape")
    assert result.vectors == {"a": vector(1)}


def test_fan_out_is_concurrent(
    departments: dict[str, tuple[FakeDepartment, str]], issue: IssueFn
) -> None:
    """Every department is asked before any answer is awaited (one deadline for all)."""
    fed = federation_of(["slow", "a", "b"], departments, issue, deadline=0.5)
    ask(fed)
    assert departments["a"][0].calls == 1
    assert departments["b"][0].calls == 1
    assert departments["slow"][0].calls == 1


class Refusing(StageOneOnly):
    def NoisyTable(
        self, request: spb.NoisyTableRequest, context: grpc.ServicerContext
    ) -> spb.NoisyTable:
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "privacy budget spent")


def test_a_department_refusing_the_question_is_named_missing(issue: IssueFn) -> None:
    """A node that refuses a question the coordinator validated is named, not fatal to the round."""
    server, port = make_server(
        lambda s: spb_grpc.add_StatisticsServiceServicer_to_server(Refusing(), s),
        tls=tls(issue("node", "strict")),
        bind="127.0.0.1:0",
        authorizer=Authorizer(FEDERATION),
    )
    try:
        material = tls(issue("coordinator", "national"))
        channel = secure_channel(f"127.0.0.1:{port}", material, f"strict.node.{FEDERATION}")
        fed = Federation({"strict": spb_grpc.StatisticsServiceStub(channel)}, 2.0)
        result = ask(fed)
        assert result.missing == ("strict",)
        assert result.reasons == {"strict": "RESOURCE_EXHAUSTED"}
        assert result.vectors == {}
    finally:
        server.stop(None)
