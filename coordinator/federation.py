"""Statistics rounds: ask every department's node for one catalogue table at once.

A round asks every node for one table of the signed catalogue, concurrently with one
deadline for all departments. A department that does not answer in time, refuses (its
own budget, version skew) or answers with a table of the wrong shape is *named* as
missing — totals are never silently smaller; the publisher then publishes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
import structlog

from childreg import codes
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc

log = structlog.get_logger("childreg.coordinator")

#: No department holds more children than this; a larger |count| is a broken answer.
MAX_CELL_COUNT = 10**9


@dataclass(frozen=True)
class RoundResult:
    """Every answering department's noisy vector, and who did not answer."""

    vectors: dict[str, list[int]]
    missing: tuple[str, ...]
    #: Why each missing department is missing: a gRPC status name, or "bad_shape".
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True only when every department answered."""
        return not self.missing


class Federation:
    """The departments' statistics stubs, and rounds over them."""

    def __init__(
        self, stubs: Mapping[str, spb_grpc.StatisticsServiceStub], deadline_seconds: float
    ) -> None:
        self._stubs = stubs  # may be live (renewed channels); read once per round
        self._deadline = deadline_seconds

    @property
    def departments(self) -> Sequence[str]:
        """Department ids in configuration order."""
        return tuple(self._stubs)

    def noisy_round(
        self, request: spb.NoisyTableRequest, *, catalogue_version: int, dimensions: Sequence[str]
    ) -> RoundResult:
        """Ask every department for one catalogue table at once; name the ones that fail."""
        started = time.perf_counter()
        stubs = dict(self._stubs)
        calls = {
            dept: stub.NoisyTable.future(request, timeout=self._deadline)
            for dept, stub in stubs.items()
        }
        size = codes.grid_size(dimensions)
        vectors: dict[str, list[int]] = {}
        reasons: dict[str, str] = {}
        for dept, call in calls.items():
            try:
                table: spb.NoisyTable = call.result()
            except grpc.RpcError as err:
                # Whatever the reason (down, slow, its own budget spent, or disagreeing about
                # a question the coordinator already validated), the department is named.
                reasons[dept] = err.code().name
                log.warning("round.department_missing", department=dept, status=reasons[dept])
                continue
            if not _fits(table, request, catalogue_version, dimensions, size):
                reasons[dept] = "bad_shape"
                log.warning("round.department_bad_shape", department=dept)
                continue
            vectors[dept] = list(table.counts)
        missing = [d for d in calls if d in reasons]
        log.info(
            "round.done",
            table=request.table_id,
            snapshot=request.academic_year,
            answered=len(vectors),
            missing=missing,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return RoundResult(vectors, tuple(missing), reasons)


def _fits(
    table: spb.NoisyTable,
    request: spb.NoisyTableRequest,
    catalogue_version: int,
    dimensions: Sequence[str],
    size: int,
) -> bool:
    """Whether a node's answer is the table that was asked for, with a sane shape."""
    return (
        table.catalogue_version == catalogue_version
        and table.table_id == request.table_id
        and table.academic_year == request.academic_year
        and list(table.dimensions) == list(dimensions)
        and len(table.counts) == size
        and all(-MAX_CELL_COUNT <= c <= MAX_CELL_COUNT for c in table.counts)
    )
