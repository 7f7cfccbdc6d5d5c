"""Statistics rounds: ask every department's node for its table at once, and add them up.

A round fans out concurrently with one deadline for all departments. A department that
does not answer in time, refuses, or answers with a table of the wrong shape is *named*
as missing and the result is flagged incomplete — totals are never silently smaller.
The question itself is validated before the round (a node refusing it is a disagreement,
e.g. version skew, and is treated like any other missing answer).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc
import structlog

from childreg import codes
from childreg.models import TableQuery
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc

log = structlog.get_logger("childreg.coordinator")

#: No department holds more children than this; a larger count is a broken answer.
MAX_CELL_COUNT = 10**9


@dataclass(frozen=True)
class NationalResult:
    """A summed table and who did (not) contribute to it."""

    query: TableQuery
    counts: list[int]
    answered: tuple[str, ...]
    missing: tuple[str, ...]

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

    def national_table(self, query: TableQuery) -> NationalResult:
        """Sum every department's dense table for ``query``; name the ones that did not answer."""
        request = spb.TableRequest(
            academic_year=query.academic_year, dimensions=list(query.dimensions)
        )
        started = time.perf_counter()
        stubs = dict(self._stubs)
        calls = {
            dept: stub.CountTable.future(request, timeout=self._deadline)
            for dept, stub in stubs.items()
        }
        size = codes.grid_size(query.dimensions)
        total = [0] * size
        answered: list[str] = []
        missing: list[str] = []
        for dept, call in calls.items():
            table = self._collect(dept, call, query, size)
            if table is None:
                missing.append(dept)
                continue
            answered.append(dept)
            for i, value in enumerate(table.counts):
                total[i] += value
        log.info(
            "round.done",
            dimensions=list(query.dimensions),
            answered=len(answered),
            missing=missing,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return NationalResult(query, total, tuple(answered), tuple(missing))

    def _collect(
        self, dept: str, call: grpc.Future[spb.CountTable], query: TableQuery, size: int
    ) -> spb.CountTable | None:
        try:
            table: spb.CountTable = call.result()
        except grpc.RpcError as err:
            # Whatever the reason (down, slow, or disagreeing about a question the coordinator
            # already validated: version skew), the department is named, never summed.
            log.warning("round.department_missing", department=dept, status=err.code().name)
            return None
        if (
            list(table.dimensions) != list(query.dimensions)
            or table.academic_year != query.academic_year
            or len(table.counts) != size
            or any(c < 0 or c > MAX_CELL_COUNT for c in table.counts)
        ):
            log.warning("round.department_bad_shape", department=dept)
            return None
        return table
