"""A node's statistics desk: it alone decides what leaves the node as a statistic.

Every answer is a table of the federation's signed catalogue (checked against the pinned
statistics-authority key), with exact discrete Gaussian noise on every cell — zeros
included, never clamped — and a charge to the node's own append-only privacy ledger.
The ledger entry is committed before a single number is returned (write-ahead), and the
node refuses once the snapshot's cap would be passed, whatever the coordinator says or
remembers. The noise is deterministic: a keyed PRF of (node secret, catalogue version,
table, snapshot, cell) seeds a cryptographic generator, so the same question always gets
the same answer and asking again gains nothing and costs nothing
(docs/statistics-method.md).

Every refusal is decided before the children's records are read, from the question and
the ledger only, so refusals carry no information about the data. The ledger keeps the
released vector itself: a repeat returns it, never a recount. One catalogue version
number stands for one content (by digest), and once a newer version has been answered
no new table is charged under an older one (its cap or tables may be superseded).

Stage 2 (secure aggregation, node/statistics/aggregation.py) goes through the same door,
:meth:`StatisticsDesk.release`, with a :class:`Noise` of its own: a share of the variance,
a seed domain of its own and the mechanism booked with the entry. A table is released
under one mechanism only: a noise share stored for secure aggregation is never answered
in the clear, and a stage-1 answer is never reused as a share.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

import structlog
from nacl.signing import VerifyKey

from childreg.catalogue import Catalogue, CatalogueTable, verify_catalogue
from childreg.dp import zcdp
from childreg.dp.dgauss import noisy_counts
from childreg.dp.prng import noise_seed
from childreg.errors import FailedPrecondition, PermissionDenied, ResourceExhausted
from childreg.models import NoisyTableQuestion, TableQuery
from childreg.signed import VerifiedCache
from node.statistics.counts import count_vector
from node.store.base import LedgerEntry, Mechanism, RecordStore

log = structlog.get_logger("childreg.node.statistics")


@dataclass(frozen=True)
class NoisyAnswer:
    """A released table: what was asked, and the noisy dense vector."""

    catalogue_version: int
    table: CatalogueTable
    academic_year: str
    counts: list[int]
    charged: bool


@dataclass(frozen=True)
class Noise:
    """How a release is noised and booked.

    ``sigma_squared`` is the exact per-cell variance this node adds; ``seed_identity``
    names the table in the noise PRF (childreg.dp.prng), so two mechanisms, or two tables,
    never draw the same noise.
    """

    mechanism: Mechanism
    sigma_squared: Fraction
    seed_identity: str


def per_department_noise(table: CatalogueTable) -> Noise:
    """Stage 1: the full σ² of the table's ρ, from this node alone."""
    # The seed names the table by id, dimensions and cost, so a table can never share
    # noise with a different table, even under a (refused) reused version number.
    return Noise(
        mechanism="per-department",
        sigma_squared=zcdp.sigma_squared(table.rho),
        seed_identity=f"{table.id}/{'+'.join(table.dimensions)}/{table.rho}",
    )


class StatisticsDesk:
    """Answers catalogue tables with noise, within the snapshot's privacy budget."""

    def __init__(
        self,
        store: RecordStore,
        noise_secret: bytes,
        authority: VerifyKey,
        *,
        federation: str,
        max_snapshot_rho: Fraction,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        if len(noise_secret) != 32:
            raise ValueError("the noise secret must be 32 bytes")
        self._store = store
        self._secret = noise_secret
        self._max_rho = max_snapshot_rho
        self._clock = clock
        self._lock = threading.Lock()  # one budget decision at a time
        self._catalogues = VerifiedCache(
            lambda blob: verify_catalogue(blob, authority, federation=federation)
        )

    def catalogue(self, signed: bytes) -> Catalogue:
        """The verified catalogue (PermissionDenied if its signature does not verify)."""
        return self._catalogues.get(signed)

    def cap(self, catalogue: Catalogue) -> Fraction:
        """The snapshot cap this node enforces: the catalogue's, never above its own."""
        return min(catalogue.snapshot_rho, self._max_rho)

    def spent(self, snapshot: str) -> Fraction:
        """What the ledger says was spent on ``snapshot`` so far."""
        return sum((e.rho for e in self._store.ledger(snapshot)), Fraction(0))

    def answer(self, question: NoisyTableQuestion, caller: str) -> NoisyAnswer:
        """Stage 1: the table with the full noise, from the ledger if paid already."""
        catalogue = self.catalogue(question.signed_catalogue)
        table = catalogue.table(question.table_id)
        return self.release(
            catalogue, table, question.academic_year, caller, per_department_noise(table)
        )

    def check(
        self, catalogue: Catalogue, table: CatalogueTable, snapshot: str, mechanism: Mechanism
    ) -> bool:
        """Would :meth:`release` go ahead? True if paid already, False if it would charge.

        Data-free and changes nothing: the refusals of :meth:`release` (version, mechanism,
        budget) are raised from the ledger alone.
        """
        with self._lock, self._store.read_view():
            entries = self._store.ledger(snapshot)
            paid = self._settle(catalogue, table, entries, mechanism)
            if paid is None:
                self._check_budget(catalogue, table, snapshot, entries)
        return paid is not None

    def release(
        self,
        catalogue: Catalogue,
        table: CatalogueTable,
        snapshot: str,
        caller: str,
        noise: Noise,
        *,
        admit: Callable[[], None] | None = None,
    ) -> NoisyAnswer:
        """The released vector: from the ledger if paid already, else charged, counted, noised.

        Charge, count and noise happen in one transaction, and the noisy vector is stored
        with the charge before it is returned: a repeat returns exactly what was released,
        never a recount (records may have changed; the same noise on new counts would
        show the change exactly). ``admit`` runs inside that transaction after the version
        and mechanism checks and before the budget check and the count (secure aggregation
        records its participant set there, so the set and the charge commit together).
        """
        with self._lock, self._store.atomic():
            entries = self._store.ledger(snapshot)
            paid = self._settle(catalogue, table, entries, noise.mechanism)
            if admit is not None:
                admit()
            if paid is not None:
                counts, charged = list(paid.released), False
            else:
                self._check_budget(catalogue, table, snapshot, entries)
                counts, charged = self._noisy(catalogue, table, snapshot, noise), True
                self._store.append_ledger(
                    LedgerEntry(
                        snapshot=snapshot,
                        catalogue_version=catalogue.version,
                        catalogue_digest=catalogue.digest(),
                        table_id=table.id,
                        rho=table.rho,
                        released=tuple(counts),
                        released_at=self._clock(),
                        requested_by=caller,
                        mechanism=noise.mechanism,
                    )
                )
        log.info(
            "statistics.released",
            table=table.id,
            snapshot=snapshot,
            catalogue_version=catalogue.version,
            mechanism=noise.mechanism,
            rho=str(table.rho),
            charged=charged,
            cells=len(counts),
        )
        return NoisyAnswer(catalogue.version, table, snapshot, counts, charged)

    def _settle(
        self,
        catalogue: Catalogue,
        table: CatalogueTable,
        entries: list[LedgerEntry],
        mechanism: Mechanism,
    ) -> LedgerEntry | None:
        """The entry already paid for this table and version (or None), once the version
        and the mechanism allow going on."""
        paid = next(
            (
                e
                for e in entries
                if e.catalogue_version == catalogue.version and e.table_id == table.id
            ),
            None,
        )
        self._check_version(catalogue, already_paid=paid is not None)
        if paid is not None and paid.mechanism != mechanism:
            raise FailedPrecondition(
                f"table {table.id} of catalogue version {catalogue.version} was released "
                f"at this node {_BY[paid.mechanism]} already; it is not released "
                f"{_BY[mechanism]} too"
            )
        return paid

    def _check_version(self, catalogue: Catalogue, *, already_paid: bool) -> None:
        """One content per version number, and no new charges under a superseded version."""
        known = self._store.catalogue_versions()
        digest = known.get(catalogue.version)
        if digest is not None and digest != catalogue.digest():
            raise PermissionDenied(
                f"catalogue version {catalogue.version} was used at this node with other "
                "content; the statistics authority must sign a new version number"
            )
        newest = max(known, default=0)
        if not already_paid and catalogue.version < newest:
            raise FailedPrecondition(
                f"catalogue version {catalogue.version} is older than version {newest} "
                "already answered at this node; ask with the current catalogue"
            )

    def _check_budget(
        self,
        catalogue: Catalogue,
        table: CatalogueTable,
        snapshot: str,
        entries: list[LedgerEntry],
    ) -> None:
        """ResourceExhausted if this table would take the snapshot past the cap."""
        spent = sum((e.rho for e in entries), Fraction(0))
        cap = self.cap(catalogue)
        if spent + table.rho > cap:
            log.warning(
                "statistics.budget_refused",
                table=table.id,
                snapshot=snapshot,
                spent=str(spent),
                cap=str(cap),
            )
            raise ResourceExhausted(
                f"the privacy budget of snapshot {snapshot} does not allow table "
                f"{table.id}: {spent} of {cap} spent, the table costs {table.rho}"
            )

    def _noisy(
        self, catalogue: Catalogue, table: CatalogueTable, snapshot: str, noise: Noise
    ) -> list[int]:
        """True counts plus discrete Gaussian noise of ``noise.sigma_squared`` on every cell."""
        query = TableQuery(academic_year=snapshot, dimensions=table.dimensions)
        exact = count_vector(self._store, query)

        def seed(cell: int) -> bytes:
            return noise_seed(
                self._secret,
                catalogue_version=catalogue.version,
                table_id=noise.seed_identity,
                snapshot=snapshot,
                cell=cell,
            )

        return noisy_counts(exact, noise.sigma_squared, seed)


#: How each mechanism is named in a refusal.
_BY: Final[dict[str, str]] = {
    "per-department": "per department (in the clear, with the full noise)",
    "secure-aggregation": "by secure aggregation (as a masked noise share)",
}
