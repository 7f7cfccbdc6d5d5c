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
the ledger only, so refusals carry no information about the data.
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
from childreg.catalogue import Catalogue, CatalogueTable, verify_catalogue
from childreg.dp.dgauss import noisy_counts
from nacl.signing import VerifyKey

from childreg.dp import zcdp
from childreg.dp.prng import noise_seed
from childreg.errors import AlreadyExists, ResourceExhausted
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
        """Charge the ledger (once per table and snapshot), then count and add noise."""
        catalogue = self.catalogue(question.signed_catalogue)
        table = catalogue.table(question.table_id)
        charged = self._charge(catalogue, table, question.academic_year, caller)
        query = TableQuery(academic_year=question.academic_year, dimensions=table.dimensions)
        exact = count_vector(self._store, query)
        sigma2 = zcdp.sigma_squared(table.rho)

        def seed(cell: int) -> bytes:
            return noise_seed(
                self._secret,
                catalogue_version=catalogue.version,
                table_id=table.id,
                snapshot=question.academic_year,
                cell=cell,
            )

        noisy = noisy_counts(exact, sigma2, seed)
        log.info(
            "statistics.released",
            table=table.id,
            snapshot=question.academic_year,
            catalogue_version=catalogue.version,
            rho=str(table.rho),
            charged=charged,
            cells=len(noisy),
        )
        return NoisyAnswer(catalogue.version, table, question.academic_year, noisy, charged)

    def _charge(
        self, catalogue: Catalogue, table: CatalogueTable, snapshot: str, caller: str
    ) -> bool:
        """Append the ledger entry and commit it; False when this table was paid already."""
        with self._lock, self._store.atomic():
            entries = self._store.ledger(snapshot)
            if any(
                e.catalogue_version == catalogue.version and e.table_id == table.id for e in entries
            ):
                return False
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
            try:
                self._store.append_ledger(
                    LedgerEntry(
                        snapshot=snapshot,
                        catalogue_version=catalogue.version,
                        table_id=table.id,
                        rho=table.rho,
                        released_at=self._clock(),
                        requested_by=caller,
                    )
                )
            except AlreadyExists:  # pragma: no cover - guarded by the lock and check above
                return False
        return True
