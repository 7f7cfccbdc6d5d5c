"""Publishing a national table: budget first, then the round, then consistent numbers.

The order is the guarantee (docs/statistics-method.md):

1. the question must name a table of the signed catalogue (dimensions in any order);
2. a table already published for the snapshot is returned from the release store,
   byte-identical and free;
3. otherwise the statistician's sub-budget and the snapshot cap are charged *before* any
   node is contacted (a retry of a charged but unpublished table is not charged again:
   the nodes' noise is deterministic, so nothing more is revealed);
4. every department answers with its noisy table, or nothing is published and the
   missing departments are named;
5. departments are summed per region, post-processed with every table published before
   in the snapshot (weighted least squares, then controlled rounding), and the table is
   stored with its privacy statement and 95 % margins (the error of the fit, which
   carries part of the earlier tables' noise: coordinator/margins.py); nation = sum of
   regions. A table is published once per snapshot, whatever the catalogue version.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import numpy as np
import structlog

from childreg import codes
from childreg.catalogue import Catalogue, CatalogueTable
from childreg.dp import zcdp
from childreg.errors import FailedPrecondition, PermissionDenied, Unavailable
from childreg.models import TableQuery
from childreg.v1 import statistics_pb2 as spb
from coordinator.federation import RoundResult
from coordinator.margins import cell_variances, combination_variance
from coordinator.postprocess import RegionMeasurement, SnapshotState, publish
from coordinator.releases import ReleaseStore, release_key

log = structlog.get_logger("childreg.coordinator")

NATIONAL = "national"
MECHANISM = "discrete_gaussian/zcdp/per-department"


class Rounds(Protocol):
    """What the publisher needs of the federation: one round for one catalogue table."""

    def noisy_round(
        self, request: spb.NoisyTableRequest, *, catalogue_version: int, dimensions: Sequence[str]
    ) -> RoundResult:
        """Every department's noisy vector, and who is missing."""


class IncompleteRound(Unavailable):
    """Departments did not answer: nothing was published (the message names them)."""


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
        federation: Rounds,
        regions: Mapping[str, str],
        store: ReleaseStore,
        budgets: Mapping[str, Fraction],
        *,
        solver_time_limit: float = 30.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._signed = catalogue
        self._federation = federation
        self._regions = dict(regions)  # department id -> region code
        self._store = store
        self._budgets = dict(budgets)
        self._time_limit = solver_time_limit
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
        """The published table's bytes (a serialized PublishedTable)."""
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
        """Refuse, before any charge, a snapshot whose regions changed since it began."""
        state = self._store.state(snapshot)
        if state is None:
            return
        now = set(self._regions.values())
        if set(SnapshotState.from_json(state).regions) != now:
            raise FailedPrecondition(
                f"the federation's regions changed after tables of snapshot {snapshot} were "
                "published; its remaining tables cannot be made consistent with them. "
                "Restore the departments of that snapshot to publish more"
            )

    def _publish(self, table: CatalogueTable, snapshot: str, key: str) -> bytes:
        catalogue = self._signed.catalogue
        request = spb.NoisyTableRequest(
            signed_catalogue=self._signed.blob, table_id=table.id, academic_year=snapshot
        )
        result = self._federation.noisy_round(
            request, catalogue_version=catalogue.version, dimensions=table.dimensions
        )
        if result.missing:
            named = ", ".join(f"{d} ({result.reasons.get(d, 'no answer')})" for d in result.missing)
            raise IncompleteRound(
                f"incomplete round: {len(result.missing)} department(s) did not answer: "
                f"{named}; nothing was published. Ask again later: the budget already "
                "charged for this table is not charged again"
            )
        sigma2 = zcdp.sigma_squared(table.rho)
        by_region: dict[str, list[str]] = {}
        for dept in result.vectors:
            by_region.setdefault(self._regions[dept], []).append(dept)
        regions = [r for r in codes.REGIONS if r in by_region]
        measurements = {
            region: RegionMeasurement(
                values=[
                    sum(col)
                    for col in zip(*(result.vectors[d] for d in by_region[region]), strict=True)
                ],
                variance=float(sigma2 * len(by_region[region])),
            )
            for region in regions
        }
        raw_state = self._store.state(snapshot)
        state = SnapshotState() if raw_state is None else SnapshotState.from_json(raw_state)
        outcome = publish(state, table.dimensions, measurements, time_limit=self._time_limit)
        for region in outcome.fallbacks:
            log.warning(
                "table.postprocess_fallback",
                table=table.id,
                region=region,
                detail=outcome.diagnostics[region].detail,
            )
        earlier = [spb.PublishedTable.FromString(b) for b in self._store.bodies(snapshot)]
        sequence = [(tuple(t.dimensions), Fraction(t.privacy.sigma_squared)) for t in earlier] + [
            (outcome.dimensions, sigma2)
        ]
        errors = _ErrorModel(
            [float(v) for v in cell_variances(sequence)[-1]],
            _total_variances(sequence, outcome.dimensions),
        )
        areas = [
            _area(NATIONAL, sorted(result.vectors), outcome.national, errors, catalogue),
            *(
                _area(r, sorted(by_region[r]), outcome.regions[r], errors, catalogue)
                for r in regions
            ),
        ]
        published = spb.PublishedTable(
            academic_year=snapshot,
            reference_date=codes.reference_date(snapshot).isoformat(),
            catalogue_version=catalogue.version,
            table_id=table.id,
            title=table.title,
            dimensions=list(outcome.dimensions),  # canonical order (codes.DIMENSIONS)
            privacy=privacy_statement(table, catalogue),
            areas=areas,
            published_at=self._clock().isoformat(timespec="seconds"),
            release_key=key,
        )
        body = published.SerializeToString(deterministic=True)
        self._store.publish(
            key,
            snapshot,
            table_id=table.id,
            dimensions=table.dimensions,
            body=body,
            state=outcome.state.to_json(),
        )
        return body


def privacy_statement(table: CatalogueTable, catalogue: Catalogue) -> spb.PrivacyStatement:
    """What every published table says about its guarantee."""
    sigma2 = zcdp.sigma_squared(table.rho)
    return spb.PrivacyStatement(
        mechanism=MECHANISM,
        rho=str(table.rho),
        sigma_squared=str(sigma2),
        sigma=float(sigma2) ** 0.5,
        epsilon=zcdp.epsilon(table.rho, catalogue.delta),
        delta=catalogue.delta,
        snapshot_rho=str(catalogue.snapshot_rho),
        snapshot_epsilon=zcdp.epsilon(catalogue.snapshot_rho, catalogue.delta),
        display_threshold=catalogue.display_threshold,
    )


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
) -> spb.AreaValues:
    """One area's published values, 95 % margins (error propagated through the fit), flags."""
    n = len(departments)
    threshold = catalogue.display_threshold
    totals = []
    for total, (cells, variance) in errors.totals.items():
        value = sum(values[i] for i in cells)
        totals.append(
            spb.AreaTotal(
                name=total,
                value=value,
                margin=zcdp.margin95(variance * n),
                confidential=value < threshold,
            )
        )
    return spb.AreaValues(
        area=name,
        departments=departments,
        values=list(values),
        margins=[zcdp.margin95(v * n) for v in errors.cells],
        confidential=[v < threshold for v in values],
        totals=totals,
    )
