"""Publishing a national table: budget first, then the round, then consistent numbers.

The order is the guarantee (docs/statistics-method.md):

1. the question must name a table of the signed catalogue (dimensions in any order);
2. a table already published for the snapshot is returned from the release store,
   byte-identical and free;
3. otherwise the statistician's sub-budget and the snapshot cap are charged *before* any
   node is contacted (a retry of a charged but unpublished table is not charged again:
   the nodes' noise is deterministic, so nothing more is revealed);
4. the aggregation mechanism measures the table completely, or nothing is published and
   the missing departments are named: stage 1 (coordinator/rounds/federation.py) sums every
   department's noisy table per region; stage 2 (coordinator/rounds/secure.py) unmasks only
   the noisy national sum of the snapshot's participant set;
5. the areas are post-processed with every table published before in the snapshot
   (weighted least squares, then controlled rounding), and the table is stored with its
   privacy statement and 95 % margins (the error of the fit, which carries part of the
   earlier tables' noise: coordinator/publication/margins.py); nation = sum of regions. A table is
   published once per snapshot, whatever the catalogue version, and a snapshot's tables
   all come from one mechanism (its areas are fixed by its first table).

The table is built as plain values (coordinator/publication/published.py) and kept as the
bytes its codec writes (the protobuf wire format, coordinator/rpc/convert.py).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import structlog

from childreg import codes
from childreg.catalogue import Catalogue, CatalogueTable
from childreg.dp import zcdp
from childreg.errors import FailedPrecondition, PermissionDenied
from childreg.models import TableQuery
from coordinator.publication.margins import cell_variances, combination_variance
from coordinator.publication.postprocess import RegionMeasurement, SnapshotState, publish
from coordinator.publication.published import (
    AreaTotal,
    AreaValues,
    PublishedTable,
    TableCodec,
    privacy_statement,
    unit_variance,
)
from coordinator.publication.releases import ReleaseStore, release_key
from coordinator.rounds.federation import NATIONAL, Rounds, TableRound

log = structlog.get_logger("childreg.coordinator")


@dataclass(frozen=True)
class SignedCatalogue:
    """The catalogue the coordinator serves: its signed bytes and their verified content."""

    blob: bytes
    catalogue: Catalogue


class Publisher:
    """Answers statisticians' questions from the release store or by a new publication."""

    def __init__(
        self,
        catalogue: SignedCatalogue,
        rounds: Rounds,
        store: ReleaseStore,
        budgets: Mapping[str, Fraction],
        *,
        codec: TableCodec,
        solver_time_limit: float = 30.0,
        solver_node_limit: int | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._signed = catalogue
        self._rounds = rounds  # the mechanism: it measures the table and names its areas
        self._store = store
        self._budgets = dict(budgets)
        self._codec = codec  # the stored and returned bytes: the wire format
        self._time_limit = solver_time_limit
        self._node_limit = solver_node_limit
        self._clock = clock
        self._lock = threading.Lock()  # one publication at a time: state must not fork

    @property
    def catalogue(self) -> SignedCatalogue:
        """The signed catalogue this coordinator answers from."""
        return self._signed

    def sub_budget(self, statistician: str) -> Fraction:
        """A statistician's sub-budget per snapshot; PermissionDenied if none is configured."""
        budget = self._budgets.get(statistician)
        if budget is None:
            raise PermissionDenied(
                "no privacy sub-budget is configured for you on this coordinator; "
                "ask the coordinator's operator to add you to `statisticians`"
            )
        return budget

    def table(self, query: TableQuery, statistician: str) -> bytes:
        """The published table's bytes, as its codec wrote them when it was published."""
        catalogue = self._signed.catalogue
        table = catalogue.table_for(query.dimensions)
        key = release_key(query.academic_year, catalogue.version, table.dimensions)
        sub_budget = self.sub_budget(statistician)
        stored = self._stored(key, query.academic_year, table.dimensions)
        if stored is not None:  # without waiting for a publication in progress
            return stored
        with self._lock:
            stored = self._stored(key, query.academic_year, table.dimensions)
            if stored is not None:
                return stored
            self._check_regions(query.academic_year)
            self._store.charge(
                query.academic_year,
                catalogue.version,
                table.id,
                table.rho,
                statistician=statistician,
                sub_budget=sub_budget,
                cap=catalogue.snapshot_rho,
            )
            body = self._publish(table, query.academic_year, key)
        log.info("table.published", table=table.id, snapshot=query.academic_year, key=key)
        return body

    def _stored(self, key: str, snapshot: str, dimensions: tuple[str, ...]) -> bytes | None:
        """A table is published once per snapshot: under this catalogue version, or an
        earlier one with the same dimensions (new noise would only cost budget)."""
        return self._store.release(key) or self._store.release_of(snapshot, dimensions)

    def _check_regions(self, snapshot: str) -> None:
        """Refuse, before any charge, a snapshot whose areas changed since it began: other
        regions, or another aggregation mechanism (regions versus national only)."""
        state = self._store.state(snapshot)
        if state is None:
            return
        now = set(self._rounds.areas)
        before = set(SnapshotState.from_json(state).regions)
        if before == now:
            return
        if NATIONAL in before | now:
            was = "secure aggregation" if NATIONAL in before else "per-department aggregation"
            raise FailedPrecondition(
                f"tables of snapshot {snapshot} were published with {was}; a snapshot's "
                "tables cannot mix aggregation mechanisms. Set the coordinator's "
                "`aggregation` back to publish more tables of that snapshot"
            )
        raise FailedPrecondition(
            f"the federation's regions changed after tables of snapshot {snapshot} were "
            "published; its remaining tables cannot be made consistent with them. "
            "Restore the departments of that snapshot to publish more"
        )

    def _publish(self, table: CatalogueTable, snapshot: str, key: str) -> bytes:
        catalogue = self._signed.catalogue
        measured = self._rounds.measure(
            TableRound(self._signed.blob, catalogue.version, table, snapshot)
        )
        regions = [r for r in codes.regions() if r in measured.areas]
        measurements = {
            name: RegionMeasurement(
                values=area.values, variance=float(measured.unit_variance * area.units)
            )
            for name, area in measured.areas.items()
        }
        raw_state = self._store.state(snapshot)
        state = SnapshotState() if raw_state is None else SnapshotState.from_json(raw_state)
        outcome = publish(
            state,
            table.dimensions,
            measurements,
            time_limit=self._time_limit,
            node_limit=self._node_limit,
        )
        for region in outcome.fallbacks:
            log.warning(
                "table.postprocess_fallback",
                table=table.id,
                region=region,
                detail=outcome.diagnostics[region].detail,
            )
        earlier = [self._codec.decode(b) for b in self._store.bodies(snapshot)]
        sequence = [(tuple(t.dimensions), unit_variance(t.privacy)) for t in earlier] + [
            (outcome.dimensions, measured.unit_variance)
        ]
        errors = _ErrorModel(
            [float(v) for v in cell_variances(sequence)[-1]],
            _total_variances(sequence, outcome.dimensions),
        )
        everyone = sorted(d for area in measured.areas.values() for d in area.departments)
        units = sum(area.units for area in measured.areas.values())
        areas = [
            _area(NATIONAL, everyone, outcome.national, errors, catalogue, n=units),
            *(
                _area(
                    r,
                    list(measured.areas[r].departments),
                    outcome.regions[r],
                    errors,
                    catalogue,
                    n=measured.areas[r].units,
                )
                for r in regions
            ),
        ]
        published = PublishedTable(
            academic_year=snapshot,
            reference_date=codes.reference_date(snapshot).isoformat(),
            catalogue_version=catalogue.version,
            table_id=table.id,
            title=table.title,
            dimensions=tuple(outcome.dimensions),  # canonical order (codes.DIMENSIONS)
            privacy=privacy_statement(table, catalogue, measured.statement),
            areas=tuple(areas),
            published_at=self._clock().isoformat(timespec="seconds"),
            release_key=key,
            missing_departments=tuple(sorted(measured.missing_departments)),
        )
        body = self._codec.encode(published)
        self._store.publish(
            key,
            snapshot,
            table_id=table.id,
            dimensions=table.dimensions,
            body=body,
            state=outcome.state.to_json(),
        )
        return body


@dataclass(frozen=True)
class _ErrorModel:
    """Per-department error variances of a table's cells and of its published totals."""

    cells: list[float]
    totals: dict[str, tuple[list[int], float]]  # name -> (cell indices, variance)


def _total_variances(
    sequence: list[tuple[tuple[str, ...], Fraction]], dims: tuple[str, ...]
) -> dict[str, tuple[list[int], float]]:
    """The published totals of a table by education form alone (codes.FORM_TOTALS)."""
    if dims != ("education_form",):
        return {}
    out: dict[str, tuple[list[int], float]] = {}
    for name, forms in codes.FORM_TOTALS.items():
        cells = [codes.EDUCATION_FORMS.index(f) for f in forms]
        weights = np.zeros(len(codes.EDUCATION_FORMS))
        weights[cells] = 1.0
        out[name] = (cells, combination_variance(sequence, weights))
    return out


def _area(
    name: str,
    departments: list[str],
    values: tuple[int, ...] | list[int],
    errors: _ErrorModel,
    catalogue: Catalogue,
    *,
    n: int,
) -> AreaValues:
    """One area's published values, 95 % margins (error propagated through the fit), flags.

    ``n`` is the area's number of noise units (``errors`` is for one unit).
    """
    threshold = catalogue.display_threshold
    totals = []
    for total, (cells, variance) in errors.totals.items():
        value = int(sum(values[i] for i in cells))
        totals.append(
            AreaTotal(
                name=total,
                value=value,
                margin=zcdp.margin95(variance * n),
                confidential=value < threshold,
            )
        )
    return AreaValues(
        area=name,
        departments=tuple(departments),
        values=tuple(int(v) for v in values),
        margins=tuple(zcdp.margin95(v * n) for v in errors.cells),
        confidential=tuple(bool(v < threshold) for v in values),
        totals=tuple(totals),
    )
