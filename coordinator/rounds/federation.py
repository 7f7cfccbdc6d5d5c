"""Statistics rounds: what the publisher gets from the nodes, and the per-department round.

The publisher (coordinator/publication/publisher.py) does the same whatever the aggregation
mechanism: charge, measure, post-process, store. This module holds the contract between
the two — a :class:`TableRound` asks for one catalogue table, a :class:`Measurement`
answers with noisy vectors per *area* (regions for stage 1, only ``"national"`` for
stage 2 of docs/design/privacy.md), their noise variance and the privacy-statement pieces of the
mechanism — and stage 1 itself (stage 2 is coordinator/rounds/secure.py).

Stage 1 asks every node for one table of the signed catalogue, concurrently with one
deadline for all departments. A department that does not answer in time, refuses (its
own budget, version skew) or answers with a table of the wrong shape is *named* as
missing — totals are never silently smaller; the publisher then publishes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final, Protocol

import grpc
import structlog

from childreg import codes
from childreg.catalogue import CatalogueTable
from childreg.dp import zcdp
from childreg.errors import Unavailable
from childreg.v1 import statistics_pb2 as spb
from childreg.v1 import statistics_pb2_grpc as spb_grpc

log = structlog.get_logger("childreg.coordinator")

#: No department holds more children than this; a larger |count| is a broken answer.
MAX_CELL_COUNT = 10**9
#: The area of the whole federation (stage 2 measures only this one).
NATIONAL: Final = "national"
PER_DEPARTMENT: Final = "discrete_gaussian/zcdp/per-department"
SECURE_AGGREGATION: Final = "discrete_gaussian/zcdp/secure-aggregation"


class IncompleteRound(Unavailable):
    """Departments did not answer: nothing was published (the message names them)."""


@dataclass(frozen=True)
class TableRound:
    """The question of one round: one table of the signed catalogue at one snapshot."""

    signed_catalogue: bytes  # the catalogue file exactly as the authority signed it
    catalogue_version: int
    table: CatalogueTable
    snapshot: str

    @property
    def sigma_squared(self) -> Fraction:
        """The table's target noise variance per cell, σ² = 1/(2ρ)."""
        return zcdp.sigma_squared(self.table.rho)


@dataclass(frozen=True)
class AreaMeasurement:
    """One area's noisy vector (``codes.grid`` order of the table's catalogue dimensions)."""

    departments: tuple[str, ...]  # sorted: whose noisy data are summed into the area
    values: Sequence[int]
    #: How many independent noise units of the measurement's ``unit_variance`` the area
    #: holds: its number of departments for stage 1, 1 for stage 2's national sum.
    units: int


@dataclass(frozen=True)
class StatementPieces:
    """What a mechanism adds to a table's privacy statement (proto PrivacyStatement)."""

    mechanism: str
    participants: int = 0  # secure aggregation only: n survivors, c and σ²/(t−c)
    colluders: int = 0
    share_sigma_squared: str = ""


@dataclass(frozen=True)
class Measurement:
    """A complete round's noisy vectors per area, ready for post-processing."""

    areas: Mapping[str, AreaMeasurement]  # region codes, or only NATIONAL
    #: Per-cell noise variance of one unit (area variance = unit_variance × units).
    unit_variance: Fraction
    statement: StatementPieces
    #: Configured departments left out (stage 2: not in the snapshot's participant set, or
    #: lost during the round).
    missing_departments: tuple[str, ...] = ()
    #: Stage 2: participants of the snapshot lost during this round after settling. Those
    #: lost before their upload are also in ``missing_departments``; one lost after it still
    #: counts (its self mask is rebuilt from the others' shares).
    dropped_departments: tuple[str, ...] = ()


class Rounds(Protocol):
    """An aggregation mechanism, as the publisher sees it."""

    @property
    def areas(self) -> frozenset[str]:
        """The areas every measurement has (a snapshot's state must have the same)."""
        ...

    def measure(self, question: TableRound) -> Measurement:
        """One complete round; IncompleteRound (or another ChildregError) otherwise."""
        ...


class NoisyRounds(Protocol):
    """Stage 1's transport: every department's noisy vector for one table."""

    def noisy_round(
        self, request: spb.NoisyTableRequest, *, catalogue_version: int, dimensions: Sequence[str]
    ) -> RoundResult:
        """Every department's noisy vector, and who is missing."""
        ...


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


class PerDepartmentRounds:
    """Stage 1: each department adds the full σ²; departments are summed per region."""

    def __init__(self, transport: NoisyRounds, regions: Mapping[str, str]) -> None:
        self._transport = transport
        self._regions = dict(regions)  # department id -> region code

    @property
    def areas(self) -> frozenset[str]:
        """The regions of the configured departments."""
        return frozenset(self._regions.values())

    def measure(self, question: TableRound) -> Measurement:
        """Ask every department; IncompleteRound naming the ones that did not answer."""
        request = spb.NoisyTableRequest(
            signed_catalogue=question.signed_catalogue,
            table_id=question.table.id,
            academic_year=question.snapshot,
        )
        result = self._transport.noisy_round(
            request,
            catalogue_version=question.catalogue_version,
            dimensions=question.table.dimensions,
        )
        if result.missing:
            named = ", ".join(f"{d} ({result.reasons.get(d, 'no answer')})" for d in result.missing)
            raise IncompleteRound(
                f"incomplete round: {len(result.missing)} department(s) did not answer: "
                f"{named}; nothing was published. Ask again later: the budget already "
                "charged for this table is not charged again"
            )
        by_region: dict[str, list[str]] = {}
        for dept in result.vectors:
            by_region.setdefault(self._regions[dept], []).append(dept)
        areas = {
            region: AreaMeasurement(
                departments=tuple(sorted(depts)),
                values=[sum(col) for col in zip(*(result.vectors[d] for d in depts), strict=True)],
                units=len(depts),
            )
            for region, depts in by_region.items()
        }
        return Measurement(areas, question.sigma_squared, StatementPieces(PER_DEPARTMENT))
