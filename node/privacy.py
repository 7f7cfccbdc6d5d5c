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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import structlog
from nacl.signing import VerifyKey

from childreg.catalogue import Catalogue, CatalogueTable, verify_catalogue
from childreg.dp import zcdp
from childreg.dp.dgauss import noisy_counts
from childreg.dp.prng import noise_seed
from childreg.errors import FailedPrecondition, PermissionDenied, ResourceExhausted
from childreg.models import NoisyTableQuestion, TableQuery
from node.statistics import count_vector
from node.store.base import LedgerEntry, RecordStore

log = structlog.get_logger("childreg.node.statistics")

#: Verified catalogues kept in memory, by the SHA-256 of their signed bytes.
_CATALOGUE_CACHE = 8


@dataclass(frozen=True)
class NoisyAnswer:
    """A released table: what was asked, and the noisy dense vector."""

    catalogue_version: int
    table: CatalogueTable
    academic_year: str
    counts: list[int]
    charged: bool


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
        self._authority = authority
        self._federation = federation
        self._max_rho = max_snapshot_rho
        self._clock = clock
        self._lock = threading.Lock()  # one budget decision at a time
        self._catalogues: OrderedDict[bytes, Catalogue] = OrderedDict()

    def catalogue(self, signed: bytes) -> Catalogue:
        """The verified catalogue (PermissionDenied if its signature does not verify)."""
        digest = hashlib.sha256(signed).digest()
        with self._lock:
            cached = self._catalogues.get(digest)
            if cached is not None:
                self._catalogues.move_to_end(digest)
                return cached
        catalogue = verify_catalogue(signed, self._authority, federation=self._federation)
        with self._lock:
            self._catalogues[digest] = catalogue
            while len(self._catalogues) > _CATALOGUE_CACHE:
                self._catalogues.popitem(last=False)
        return catalogue

    def cap(self, catalogue: Catalogue) -> Fraction:
        """The snapshot cap this node enforces: the catalogue's, never above its own."""
        return min(catalogue.snapshot_rho, self._max_rho)

    def spent(self, snapshot: str) -> Fraction:
        """What the ledger says was spent on ``snapshot`` so far."""
        return sum((e.rho for e in self._store.ledger(snapshot)), Fraction(0))

    def answer(self, question: NoisyTableQuestion, caller: str) -> NoisyAnswer:
        """The released vector: from the ledger if paid already, else charged, counted, noised.

        Charge, count and noise happen in one transaction, and the noisy vector is stored
        with the charge before it is returned: a repeat returns exactly what was released,
        never a recount (records may have changed; the same noise on new counts would
        show the change exactly).
        """
        catalogue = self.catalogue(question.signed_catalogue)
        table = catalogue.table(question.table_id)
        snapshot = question.academic_year
        with self._lock, self._store.atomic():
            entries = self._store.ledger(snapshot)
            paid = next(
                (
                    e
                    for e in entries
                    if e.catalogue_version == catalogue.version and e.table_id == table.id
                ),
                None,
            )
            self._check_version(catalogue, already_paid=paid is not None)
            if paid is not None:
                counts, charged = list(paid.released), False
            else:
                self._check_budget(catalogue, table, snapshot, entries)
                counts, charged = self._release(catalogue, table, snapshot), True
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
                    )
                )
        log.info(
            "statistics.released",
            table=table.id,
            snapshot=snapshot,
            catalogue_version=catalogue.version,
            rho=str(table.rho),
            charged=charged,
            cells=len(counts),
        )
        return NoisyAnswer(catalogue.version, table, snapshot, counts, charged)

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

    def _release(self, catalogue: Catalogue, table: CatalogueTable, snapshot: str) -> list[int]:
        """True counts plus discrete Gaussian noise on every cell (stage 1: the full σ)."""
        query = TableQuery(academic_year=snapshot, dimensions=table.dimensions)
        exact = count_vector(self._store, query)
        # The seed names the table by id, dimensions and cost, so a table can never share
        # noise with a different table, even under a (refused) reused version number.
        identity = f"{table.id}/{'+'.join(table.dimensions)}/{table.rho}"

        def seed(cell: int) -> bytes:
            return noise_seed(
                self._secret,
                catalogue_version=catalogue.version,
                table_id=identity,
                snapshot=snapshot,
                cell=cell,
            )

        return noisy_counts(exact, zcdp.sigma_squared(table.rho), seed)
