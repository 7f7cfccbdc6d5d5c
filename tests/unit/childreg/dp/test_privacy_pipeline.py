"""The whole node → coordinator path in one process, many times: what the guarantee means.

Real node desks (catalogue check, ledger, exact discrete Gaussian noise), the real
publisher (budget, post-processing, release store); only the gRPC transport between them
is replaced by direct calls, so thousands of snapshots take seconds. Each snapshot gets
fresh noise because the PRF covers the snapshot.

- Neighbouring datasets (one child added): the privacy loss measured on the published
  value stays within the ε the catalogue states for the table at its δ — and the same
  measurement on a mechanism with far too little noise exceeds it (the test can fail).
- Coverage: the seed figures lie within the stated 95 % margins about 95 % of the time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from childreg import codes
from childreg.catalogue import Catalogue, parse_catalogue, sign_catalogue
from childreg.dp import zcdp
from childreg.errors import ChildregError
from childreg.models import NoisyTableQuestion, TableQuery
from childreg.seed import SEED_FORM_COUNTS
from childreg.v1 import statistics_pb2 as spb
from coordinator.publication.publisher import Publisher, SignedCatalogue
from coordinator.publication.releases import ReleaseStore
from coordinator.rounds.federation import PerDepartmentRounds, RoundResult
from coordinator.rpc.convert import PUBLISHED_TABLES
from node.statistics.desk import StatisticsDesk
from node.store.memory import MemoryStore
from tests.conftest import authority_key
from tools.clients.published import NATIONAL, PublishedView
from tools.dev.synth import largest_remainder

FEDERATION = "test.childreg"
FORM = ("education_form",)


class FixedCounts(MemoryStore):
    """A department whose true counts by education form are given (the desk counts them)."""

    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__()
        self.counts: dict[tuple[str, ...], int] = {(form,): n for form, n in counts.items()}

    def count_table(
        self, academic_year: str, reference_date: dt.date, dimensions: Sequence[str]
    ) -> dict[tuple[str, ...], int]:
        assert tuple(dimensions) == FORM
        return dict(self.counts)


class InProcessRounds:
    """The coordinator's round with direct calls to each department's desk."""

    def __init__(self, desks: dict[str, StatisticsDesk]) -> None:
        self.desks = desks

    def noisy_round(
        self, request: spb.NoisyTableRequest, *, catalogue_version: int, dimensions: Sequence[str]
    ) -> RoundResult:
        question = NoisyTableQuestion(
            signed_catalogue=request.signed_catalogue,
            table_id=request.table_id,
            academic_year=request.academic_year,
        )
        vectors: dict[str, list[int]] = {}
        reasons: dict[str, str] = {}
        for dept, desk in self.desks.items():
            try:
                vectors[dept] = desk.answer(question, "coordinator").counts
            except ChildregError as exc:
                reasons[dept] = exc.status.name
        return RoundResult(vectors, tuple(reasons), reasons)


def catalogue(rho: str = "1/32") -> Catalogue:
    """One table by education form costing ``rho``, the snapshot cap equal to it."""
    return parse_catalogue(
        {
            "federation": FEDERATION,
            "version": 1,
            "snapshot_rho": rho,
            "delta": 1e-9,
            "display_threshold": 10,
            "tables": [{"id": "form", "title": "By form", "dimensions": list(FORM), "rho": rho}],
        }
    )


def publisher(tmp: Path, departments: dict[str, dict[str, int]], cat: Catalogue) -> Publisher:
    """A federation of departments (one per region, in code-list order) and its coordinator."""
    desks = {
        dept: StatisticsDesk(
            FixedCounts(counts),
            hashlib.blake2b(f"{tmp}/{dept}".encode(), digest_size=32).digest(),
            authority_key().verify_key,
            federation=FEDERATION,
            max_snapshot_rho=cat.snapshot_rho,
        )
        for dept, counts in departments.items()
    }
    regions = dict(zip(departments, codes.regions(), strict=False))
    return Publisher(
        SignedCatalogue(sign_catalogue(cat, authority_key()), cat),
        PerDepartmentRounds(InProcessRounds(desks), regions),
        ReleaseStore(tmp / "releases.db"),
        {"alice": cat.snapshot_rho},
        codec=PUBLISHED_TABLES,
    )


def snapshots(n: int) -> list[str]:
    """``n`` distinct academic years (snapshots)."""
    return [f"{y}/{(y + 1) % 100:02d}" for y in range(1900, 1900 + n)]


def national(pub: Publisher, year: str) -> PublishedView:
    """Publish the form table for ``year`` and read it as a statistician would."""
    body = pub.table(TableQuery(academic_year=year, dimensions=FORM), "alice")
    return PublishedView.from_proto(spb.PublishedTable.FromString(body))


def value_of(view: PublishedView, form: str, area: str = NATIONAL) -> int:
    """The published value of one form (None is not expected for the big cells used here)."""
    cell = next(c for c in view.area(area).cells if c.key == (form,))
    assert cell.value is not None
    return cell.value


def empirical_epsilon(a: list[int], b: list[int], min_count: int = 40) -> float:
    """The largest |log P(E|D)/P(E|D')| over tail events E both samples populate well.

    Tail events {o ≤ t} and {o ≥ t}; an event seen ≥ min_count times under one dataset and
    never under the other is an infinite loss.
    """
    ca, cb = Counter(a), Counter(b)
    support = sorted(set(ca) | set(cb))
    worst = 0.0
    for direction in (1, -1):
        run_a = run_b = 0
        for t in support[::direction]:
            run_a += ca[t]
            run_b += cb[t]
            if max(run_a, run_b) < min_count:
                continue
            if min(run_a, run_b) == 0:
                return math.inf
            if min(run_a, run_b) >= min_count:
                worst = max(worst, abs(math.log((run_a / len(a)) / (run_b / len(b)))))
    return worst


COUNTS = {f: 40 + i for i, f in enumerate(codes.EDUCATION_FORMS)}


def neighbours(tmp: Path, rho: str, n_snapshots: int) -> tuple[list[int], list[int]]:
    """The published special_school value over many snapshots, for D and D + one child."""
    plus_one = {**COUNTS, "special_school": COUNTS["special_school"] + 1}
    years = snapshots(n_snapshots)
    outputs: list[list[int]] = []
    for name, data in (("d", COUNTS), ("d_prime", plus_one)):
        (tmp / name).mkdir()
        pub = publisher(tmp / name, {"solo": data}, catalogue(rho))
        outputs.append([value_of(national(pub, y), "special_school") for y in years])
    return outputs[0], outputs[1]


def test_neighbouring_datasets_stay_within_the_stated_epsilon(tmp_path: Path) -> None:
    """Over 1,500 snapshots, adding one child moves the published value's distribution by
    no more than the ε the catalogue states for the table (1/32 → ε ≈ 1.47 at δ = 1e-9),
    and the noise really has the stated variance σ² = 16 (a loss measurement alone would
    not notice several times less noise)."""
    stated = zcdp.epsilon(Fraction(1, 32), 1e-9)
    d, d_prime = neighbours(tmp_path, "1/32", 1500)
    measured = empirical_epsilon(d, d_prime)
    assert measured <= stated, (measured, stated)
    assert measured > 0.05  # the loss is real: the estimator sees the shift
    truth = COUNTS["special_school"]
    variance = sum((v - truth) ** 2 for v in d) / len(d)
    assert 16 * 0.88 <= variance <= 16 * 1.12, variance  # sd of the estimate ≈ 3.7 %


def test_the_measurement_catches_a_mechanism_with_too_little_noise(tmp_path: Path) -> None:
    """With σ² = 1/64 (ρ = 32) the same measurement is far above the ε of ρ = 1/32."""
    d, d_prime = neighbours(tmp_path, "32", 300)
    assert empirical_epsilon(d, d_prime) > zcdp.epsilon(Fraction(1, 32), 1e-9)


def test_seed_figures_fall_within_their_margins_about_95_percent_of_the_time(
    tmp_path: Path,
) -> None:
    """14 departments holding the seed counts, 40 snapshots: each seed form within its
    stated 95 % margin in a plausible share of the 360 trials."""
    shares = {f: largest_remainder(n, [1] * 14) for f, n in SEED_FORM_COUNTS.items()}
    departments = {
        f"dept{i:02d}": {f: shares[f][i] if f in shares else 0 for f in codes.EDUCATION_FORMS}
        for i in range(14)
    }
    pub = publisher(tmp_path, departments, catalogue("1/32"))
    inside = trials = 0
    for year in snapshots(40):
        view = national(pub, year)
        for form, truth in SEED_FORM_COUNTS.items():
            cell = next(c for c in view.area(NATIONAL).cells if c.key == (form,))
            assert cell.value is not None
            assert cell.margin == zcdp.margin95(16 * 14)
            trials += 1
            inside += abs(cell.value - truth) <= cell.margin
    rate = inside / trials
    # 95 % nominal (≈ 95.4 % with the margin rounded up); 360 trials: sd ≈ 1.1 points.
    assert 0.90 <= rate <= 0.995, rate


def test_regions_add_up_to_the_nation_in_the_pipeline(tmp_path: Path) -> None:
    """Three departments in three regions: every national cell is the sum of the regions,
    and every published value is a non-negative integer."""
    departments = {f"d{i}": dict.fromkeys(codes.EDUCATION_FORMS, 3 * i) for i in range(3)}
    pub = publisher(tmp_path, departments, catalogue())
    body = pub.table(TableQuery(academic_year="2023/24", dimensions=FORM), "alice")
    areas = {a.area: list(a.values) for a in spb.PublishedTable.FromString(body).areas}
    assert len(areas) == 4
    nation = areas.pop(NATIONAL)
    assert nation == [sum(col) for col in zip(*areas.values(), strict=True)]
    assert all(type(v) is int and v >= 0 for values in (nation, *areas.values()) for v in values)
