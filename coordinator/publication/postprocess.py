"""Consistent publication: turn noisy regional tables into integers that add up.

Why: the coordinator receives, per region, a noisy count table (integers, possibly
negative).  Published tables must be non-negative integers, regions must sum to the
nation, and any two tables of a snapshot must agree on their shared margins (the grand
total when they share no dimension), or readers see contradictions between tables.
Post-processing noisy output costs no privacy budget.

Tables are published one at a time, on first request, and a published table is final.
So each new table is fitted to the tables already published, per region independently,
with the two-step approach of the US Census Bureau's 2020 TopDown algorithm (Abowd et
al., "The 2020 Census Disclosure Avoidance System TopDown Algorithm", Harvard Data
Science Review, 2022): a real-valued L2 fit, then an L1 integer rounding.

1. Weighted least squares: project the measurement onto the affine subspace "marginal
   over the dimensions shared with each earlier table = that table's published margin".
   The weights are 1/variance, uniform within one table, so this is the orthogonal
   projection (``numpy.linalg.lstsq`` on the small constraint system).
2. Controlled rounding (:mod:`coordinator.publication.rounding`): each region keeps an integer base
   over the union of the dimensions published so far, of which every published table is
   a marginal.  An integer program (``scipy.optimize.milp``, HiGHS) finds a new base
   that reproduces every earlier table exactly and whose margin over the new table is
   L1-closest to the fit; that margin is published.  Keeping a base (not just pairwise
   margins) guarantees that a later table is always feasible.

The first table of a snapshot has nothing to agree with: its values are the nearest
non-negative integers.  The nation is the sum of the published regions.  Under secure
aggregation (stage 2 of docs/design/privacy.md) the coordinator measures only the nation: the
snapshot then has the single pseudo-region ``"national"`` (never mixed with regions).

Limits: earlier tables are fixed, so a later table inherits their noise on the shared
margins (sex x age_band carries the sex margin of education_form x sex, a sum of 11
noisy cells); only publishing several tables at once could fit them jointly.  Since the
weights are uniform within a table the variance does not move the fit; it scales the
``adjustment`` diagnostic.  If HiGHS proves no optimum within the time limit, a
deterministic fallback keeps every equality but fits worse (reported per region).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import numpy as np

from childreg import codes
from coordinator.publication import rounding
from coordinator.publication.rounding import Counts, Dims, Method, Reals, canonical, marginal

#: Dimensions a published table may have (region and district are the regions themselves).
TABLE_DIMENSIONS: Final = tuple(d for d in codes.DIMENSIONS if d not in ("region", "district"))
MAX_TABLE_DIMENSIONS: Final = 3
#: Bound on any count or measured value (far above any real count; keeps int64 exact).
MAX_VALUE: Final = 2**31 - 1
STATE_FORMAT: Final = "childreg.consistent-publication.v1"
#: The only area of a snapshot measured nationally (secure aggregation).
NATIONAL: Final = "national"


def check_areas(names: Iterable[str]) -> None:
    """Regions of the code list, or ``NATIONAL`` alone; ValueError otherwise."""
    areas = set(names)
    if NATIONAL in areas:
        if areas != {NATIONAL}:
            raise ValueError(
                f"{NATIONAL!r} is a snapshot's only area; it is never mixed with regions"
            )
        return
    unknown = areas - set(codes.regions())
    if unknown:
        raise ValueError(f"unknown regions: {sorted(unknown)}")


@dataclass(frozen=True)
class RegionMeasurement:
    """One region's noisy table: ``values`` in ``codes.grid(dimensions)`` order as given."""

    values: Sequence[int]
    variance: float  # per-cell noise variance of this region's sum


@dataclass(frozen=True)
class Table:
    """A dense non-negative integer table over canonical-order dimensions."""

    dimensions: Dims
    values: tuple[int, ...]

    def __post_init__(self) -> None:
        dims = self.dimensions
        if not dims or not set(dims) <= set(TABLE_DIMENSIONS) or dims != canonical(dims):
            raise ValueError(f"dimensions must be distinct, known, in canonical order: {dims}")
        if len(self.values) != codes.grid_size(dims):
            raise ValueError(f"a table over {dims} has {codes.grid_size(dims)} cells")
        if not all(type(v) is int and 0 <= v <= MAX_VALUE for v in self.values):
            raise ValueError(f"table values must be ints from 0 to {MAX_VALUE}")

    def array(self) -> Counts:
        """The values as a flat int64 array."""
        return np.array(self.values, dtype=np.int64)


@dataclass(frozen=True)
class RegionState:
    """One region: its base and its published tables (each a marginal of the base)."""

    base: Table
    published: tuple[Table, ...]

    def __post_init__(self) -> None:
        if not self.published:
            raise ValueError("a region's state holds at least one published table")
        dims = [t.dimensions for t in self.published]
        if len(set(dims)) != len(dims):
            raise ValueError("a table is published at most once")
        if self.base.dimensions != canonical(d for t in dims for d in t):
            raise ValueError("the base is over the union of the published dimensions")
        base = self.base.array()
        for t in self.published:
            if not np.array_equal(marginal(base, self.base.dimensions, t.dimensions), t.array()):
                raise ValueError(f"published table {t.dimensions} is not a marginal of the base")


@dataclass(frozen=True)
class SnapshotState:
    """Everything publication needs to remember about one snapshot, per region (or
    nationally: ``NATIONAL`` as the one pseudo-region)."""

    regions: Mapping[str, RegionState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_areas(self.regions)
        if len({self.tables_of(r) for r in self.regions}) > 1:
            raise ValueError("every region has the same published tables, in the same order")
        frozen = MappingProxyType(dict(sorted(self.regions.items())))
        object.__setattr__(self, "regions", frozen)

    def tables_of(self, region: str) -> tuple[Dims, ...]:
        """The dimensions of a region's published tables, in publication order."""
        return tuple(t.dimensions for t in self.regions[region].published)

    @property
    def tables(self) -> tuple[Dims, ...]:
        """The dimensions of the published tables, in publication order."""
        return self.tables_of(next(iter(self.regions))) if self.regions else ()

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types; :meth:`from_json` reads it back."""

        def table(t: Table) -> dict[str, Any]:
            return {"dimensions": list(t.dimensions), "values": list(t.values)}

        return {
            "format": STATE_FORMAT,
            "regions": {
                r: {"base": table(s.base), "published": [table(t) for t in s.published]}
                for r, s in self.regions.items()
            },
        }

    @classmethod
    def from_json(cls, data: object) -> SnapshotState:
        """Strictly validate and load :meth:`to_json` output; ValueError when malformed."""
        doc = _object(data, {"format", "regions"}, "state")
        if doc["format"] != STATE_FORMAT:
            raise ValueError(f"unsupported state format: {doc['format']!r}")
        regions = doc["regions"]
        if not isinstance(regions, dict):
            raise ValueError("regions must be an object")
        loaded = {}
        for name, raw in regions.items():
            region = _object(raw, {"base", "published"}, f"region {name}")
            published = region["published"]
            if not isinstance(published, list):
                raise ValueError(f"region {name}: published must be a list")
            loaded[name] = RegionState(_table(region["base"]), tuple(_table(t) for t in published))
        return cls(loaded)


def _object(data: object, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(data, dict) or set(data) != keys:
        raise ValueError(f"{what} must be an object with exactly the keys {sorted(keys)}")
    return data


def _table(data: object) -> Table:
    doc = _object(data, {"dimensions", "values"}, "table")
    dims, values = doc["dimensions"], doc["values"]
    if not isinstance(dims, list) or not all(isinstance(d, str) for d in dims):
        raise ValueError("table dimensions must be a list of strings")
    if not isinstance(values, list):
        raise ValueError("table values must be a list")
    return Table(tuple(dims), tuple(values))


@dataclass(frozen=True)
class RegionDiagnostics:
    """How one region's table was found; for the coordinator's log."""

    method: Method  # direct (first table), determined (margin of an earlier), milp, fallback
    detail: str  # the solver's status, or why the fallback was used
    seconds: float
    l1_deviation: float  # sum |published - fitted|
    adjustment: float  # sum (fitted - measured)^2 / variance: large = measurement disagrees


@dataclass(frozen=True)
class Publication:
    """A published table: per region and national, in canonical dimension order."""

    dimensions: Dims  # canonical order; the caller's order is only used to read values
    regions: Mapping[str, tuple[int, ...]]
    national: tuple[int, ...]
    state: SnapshotState
    diagnostics: Mapping[str, RegionDiagnostics]

    @property
    def fallbacks(self) -> tuple[str, ...]:
        """Regions whose integer program gave no proven optimum (to log as a warning)."""
        return tuple(r for r, d in self.diagnostics.items() if d.method == "fallback")


def publish(
    state: SnapshotState,
    dimensions: Sequence[str],
    measurements: Mapping[str, RegionMeasurement],
    *,
    time_limit: float = 30.0,
    node_limit: int | None = None,
) -> Publication:
    """Publish a table over ``dimensions`` consistently with ``state``'s earlier tables.

    ``dimensions`` may come in any order; each measurement's values are read in
    ``codes.grid(dimensions)`` order of that order, and everything published is in the
    canonical order (``codes.DIMENSIONS``).  ``time_limit`` bounds each region's integer
    program in seconds and ``node_limit`` (if given) in branch-and-bound nodes.  Same
    inputs, same outputs; only whether the time limit is hit (and so how close to
    optimal a region's table is) depends on the machine, so a caller that needs the same
    result everywhere sets a node limit low enough to stop first.
    """
    given = tuple(dimensions)
    if not set(given) <= set(TABLE_DIMENSIONS):
        raise ValueError(f"dimensions must be among {TABLE_DIMENSIONS}")
    dims = canonical(given)
    if len(dims) != len(given) or not 1 <= len(dims) <= MAX_TABLE_DIMENSIONS:
        raise ValueError(f"a table has 1 to {MAX_TABLE_DIMENSIONS} distinct dimensions")
    if dims in state.tables:
        raise ValueError(f"table {dims} is already published in this snapshot")
    if not measurements or (state.regions and set(measurements) != set(state.regions)):
        raise ValueError("measurements must cover exactly the snapshot's regions")
    check_areas(measurements)
    if not math.isfinite(time_limit) or time_limit <= 0:
        raise ValueError("time_limit must be positive")
    if node_limit is not None and node_limit <= 0:
        raise ValueError("node_limit must be positive")
    regions: dict[str, RegionState] = {}
    values: dict[str, tuple[int, ...]] = {}
    diagnostics: dict[str, RegionDiagnostics] = {}
    for region in sorted(measurements):
        started = time.perf_counter()
        measured = _measured(measurements[region], given, dims, region)
        prior = state.regions.get(region)
        earlier = [(t.dimensions, t.array()) for t in prior.published] if prior else []
        fitted = _fit(dims, measured, earlier)
        base_dims, base = (prior.base.dimensions, prior.base.array()) if prior else ((), None)
        out = rounding.round_table(
            base_dims, base, earlier, dims, fitted, time_limit=time_limit, node_limit=node_limit
        )
        published = Table(dims, tuple(int(v) for v in out.published))
        regions[region] = RegionState(
            Table(out.base_dims, tuple(int(v) for v in out.base)),
            (*(prior.published if prior else ()), published),
        )
        values[region] = published.values
        variance = measurements[region].variance
        diagnostics[region] = RegionDiagnostics(
            method=out.method,
            detail=out.detail,
            seconds=time.perf_counter() - started,
            l1_deviation=float(np.abs(out.published - fitted).sum()),
            adjustment=float(((fitted - measured) ** 2).sum() / variance),
        )
    national = tuple(sum(cells) for cells in zip(*values.values(), strict=True))
    return Publication(
        dims,
        MappingProxyType(values),
        national,
        SnapshotState(regions),
        MappingProxyType(diagnostics),
    )


def _measured(m: RegionMeasurement, given: Dims, dims: Dims, region: str) -> Reals:
    """A region's measurement as floats in canonical order, after checking it."""
    if region not in codes.regions() and region != NATIONAL:
        raise ValueError(f"unknown region: {region!r}")
    if len(m.values) != codes.grid_size(given):
        raise ValueError(f"{region}: a table over {given} has {codes.grid_size(given)} cells")
    if not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and abs(v) <= MAX_VALUE
        for v in m.values
    ):
        raise ValueError(f"{region}: measured values must be ints of at most {MAX_VALUE}")
    if not (math.isfinite(m.variance) and m.variance > 0):
        raise ValueError(f"{region}: variance must be positive and finite")
    flat = np.array([int(v) for v in m.values], dtype=np.float64)
    return rounding.reorder(flat, given, dims)


def _fit(dims: Dims, measured: Reals, earlier: Sequence[tuple[Dims, Counts]]) -> Reals:
    """Least-squares projection onto "shared margins equal the published ones"."""
    constraints: dict[Dims, Counts] = {}
    for other, values in earlier:
        shared = tuple(d for d in dims if d in other)
        constraints[shared] = marginal(values, other, shared)  # equal for equal keys
    kept = [s for s in constraints if not any(set(s) < set(o) for o in constraints)]
    if not kept:
        return measured
    matrix = np.vstack([rounding.margin_matrix(dims, s).toarray() for s in kept])
    target = np.concatenate([constraints[s] for s in kept]).astype(np.float64)
    # Minimum-norm correction of a consistent system = orthogonal projection.
    correction: Reals = np.linalg.lstsq(matrix, matrix @ measured - target, rcond=None)[0]
    return measured - correction
