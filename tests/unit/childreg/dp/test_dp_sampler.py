"""The exact discrete Gaussian sampler and its deterministic bit source (PRIVACY.md, "Mechanism").

Goodness of fit against the exact pmf (Canonne, Kamath, Steinke 2020), Python ints out,
the same support for true counts 0 and 1, reproducible seeds, exact uniform and Bernoulli
primitives, refusals. Every statistical test uses fixed seeds, so a run is reproducible;
each goodness-of-fit check is paired with one showing it rejects a wrong distribution.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
from nacl.bindings import randombytes_buf_deterministic
from scipy import stats

from childreg.dp.dgauss import bernoulli_exp, discrete_gaussian, discrete_laplace, noisy_counts
from childreg.dp.prng import BitSource, DeterministicBits, SystemBits, noise_seed

#: Significance level of every goodness-of-fit test: a correct sampler fails 1 in 10⁴.
ALPHA = 1e-4
SECRET = bytes(range(32))
SIGMA2 = Fraction(16)


def seed_of(label: str) -> bytes:
    """A fixed 32-byte seed named by ``label`` (so each test has its own stream)."""
    return hashlib.blake2b(label.encode(), digest_size=32).digest()


def cell_seeds(table_id: str, version: int = 1) -> Callable[[int], bytes]:
    def seed(cell: int) -> bytes:
        return noise_seed(
            SECRET, catalogue_version=version, table_id=table_id, snapshot="2025-09-30", cell=cell
        )

    return seed


def pmf_from_weights(weight: Callable[[int], Decimal], radius: int) -> dict[int, float]:
    """Normalise exp-weights over [−radius, radius] in 50-digit decimal arithmetic."""
    with localcontext() as ctx:
        ctx.prec = 50
        weights = {x: weight(x) for x in range(-radius, radius + 1)}
        total = sum(weights.values(), Decimal(0))
        return {x: float(w / total) for x, w in weights.items()}


def gaussian_pmf(sigma_squared: Fraction) -> dict[int, float]:
    """P(x) ∝ exp(−x²/(2σ²)), over a support so wide that the rest has mass < 1e-30."""
    s2 = Decimal(sigma_squared.numerator) / Decimal(sigma_squared.denominator)
    radius = 12 * (int(s2.sqrt()) + 1)
    return pmf_from_weights(lambda x: (-Decimal(x * x) / (2 * s2)).exp(), radius)


def laplace_pmf(scale: Fraction) -> dict[int, float]:
    """P(x) ∝ exp(−|x|/t)."""
    t = Decimal(scale.numerator) / Decimal(scale.denominator)
    radius = int(80 * t) + 10
    return pmf_from_weights(lambda x: (-Decimal(abs(x)) / t).exp(), radius)


def chi_square_pvalue(samples: list[int], pmf: dict[int, float], min_expected: float = 5) -> float:
    """Pearson's test; consecutive values are pooled until each bin expects ≥ ``min_expected``.

    Samples outside the pmf's support fall into the outermost bins.
    """
    n = len(samples)
    seen = Counter(samples)
    lo, hi = min(pmf), max(pmf)
    bins: list[tuple[float, int]] = []
    expected, observed = 0.0, 0
    for x in range(lo, hi + 1):
        expected += n * pmf[x]
        observed += seen[x] + (sum(c for v, c in seen.items() if v < lo) if x == lo else 0)
        if expected >= min_expected:
            bins.append((expected, observed))
            expected, observed = 0.0, 0
    observed += sum(c for v, c in seen.items() if v > hi)
    last_e, last_o = bins.pop()
    bins.append((last_e + expected, last_o + observed))
    assert sum(o for _, o in bins) == n
    statistic = sum((o - e) ** 2 / e for e, o in bins)
    return float(stats.chi2.sf(statistic, len(bins) - 1))


def draws(sample: Callable[[DeterministicBits], int], label: str, n: int) -> list[int]:
    bits = DeterministicBits(seed_of(label))
    return [sample(bits) for _ in range(n)]


@pytest.fixture(scope="module")
def noise_16() -> list[int]:
    """100,000 noise values at σ² = 16 through the production path: one seed per cell."""
    return noisy_counts([0] * 100_000, SIGMA2, cell_seeds("gof"))


# --- goodness of fit -----------------------------------------------------------------


def test_discrete_gaussian_fits_the_exact_pmf_at_sigma2_16(noise_16: list[int]) -> None:
    """100,000 noise values at σ² = 16 from the production path pass a chi-square test against the
    exact discrete Gaussian pmf."""
    assert chi_square_pvalue(noise_16, gaussian_pmf(SIGMA2)) > ALPHA


def test_discrete_gaussian_fits_at_a_non_integer_variance() -> None:
    """Samples at σ² = 9/4 fit the exact discrete Gaussian pmf."""
    s2 = Fraction(9, 4)
    samples = draws(lambda b: discrete_gaussian(s2, b), "gof-9/4", 30_000)
    assert chi_square_pvalue(samples, gaussian_pmf(s2)) > ALPHA


def test_discrete_gaussian_fits_at_a_small_variance() -> None:
    """Samples at σ² = 1/3, where the proposal is wider than the target, fit the exact pmf."""
    s2 = Fraction(1, 3)  # t = 1: the proposal is wider than the target
    samples = draws(lambda b: discrete_gaussian(s2, b), "gof-1/3", 20_000)
    assert chi_square_pvalue(samples, gaussian_pmf(s2)) > ALPHA


def test_the_goodness_of_fit_check_rejects_a_wrong_variance(noise_16: list[int]) -> None:
    """The same check fails for σ² = 25 samples against σ² = 16, and for 16 against 17."""
    wide = draws(lambda b: discrete_gaussian(Fraction(25), b), "gof-25", 20_000)
    assert chi_square_pvalue(wide, gaussian_pmf(SIGMA2)) < ALPHA
    assert chi_square_pvalue(noise_16, gaussian_pmf(Fraction(17))) < ALPHA


def test_the_goodness_of_fit_check_rejects_a_shifted_sampler(noise_16: list[int]) -> None:
    """The goodness-of-fit check rejects the σ² = 16 noise shifted by one."""
    assert chi_square_pvalue([x + 1 for x in noise_16], gaussian_pmf(SIGMA2)) < ALPHA


@pytest.mark.parametrize("scale", [Fraction(1), Fraction(3, 2), Fraction(7, 3)])
def test_discrete_laplace_fits_the_exact_pmf(scale: Fraction) -> None:
    """Discrete Laplace samples at each scale fit the exact pmf, and the check rejects them against
    a scale 5/4 as large."""
    samples = draws(lambda b: discrete_laplace(scale, b), f"lap-{scale}", 20_000)
    assert chi_square_pvalue(samples, laplace_pmf(scale)) > ALPHA
    assert chi_square_pvalue(samples, laplace_pmf(scale * Fraction(5, 4))) < ALPHA


@pytest.mark.parametrize(
    "gamma", [Fraction(0), Fraction(1, 3), Fraction(1), Fraction(3, 2), Fraction(7, 3)]
)
def test_bernoulli_exp_has_probability_exp_minus_gamma(gamma: Fraction) -> None:
    """bernoulli_exp(γ) is true with probability exp(−γ), told apart by a binomial test from a
    probability 10 % higher (and always true at γ = 0)."""
    n = 20_000
    hits = sum(draws(lambda b: int(bernoulli_exp(gamma, b)), f"bexp-{gamma}", n))
    p = float((-Decimal(gamma.numerator) / Decimal(gamma.denominator)).exp())
    assert stats.binomtest(hits, n, p).pvalue > ALPHA
    wrong = min(1.0, p * 1.1)
    if p < 1:
        assert stats.binomtest(hits, n, wrong).pvalue < ALPHA
    else:
        assert hits == n


# --- outputs and support -------------------------------------------------------------


def test_outputs_are_exactly_python_ints(noise_16: list[int]) -> None:
    """The samplers return exact Python ints (a bool for bernoulli_exp), also for an int variance
    and for numpy integer counts."""
    bits = DeterministicBits(seed_of("types"))
    assert type(discrete_gaussian(SIGMA2, bits)) is int
    assert type(discrete_gaussian(9, bits)) is int
    assert type(discrete_laplace(Fraction(3, 2), bits)) is int
    assert type(bernoulli_exp(Fraction(1, 2), bits)) is bool
    assert {type(x) for x in noise_16} == {int}
    from_numpy = noisy_counts(list(np.array([0, 3, 7], dtype=np.int64)), SIGMA2, cell_seeds("t"))
    assert {type(x) for x in from_numpy} == {int}


def test_true_counts_zero_and_one_have_the_same_support(noise_16: list[int]) -> None:
    """Nothing is clamped: a noisy 0 can be negative; 0 and 1 reach the same values."""
    ones = noisy_counts([1] * 20_000, SIGMA2, cell_seeds("support-1"))
    zeros = noise_16
    assert min(zeros) < 0
    assert min(ones) < 0
    bulk = set(range(-8, 10))  # within about ±2σ of both 0 and 1
    assert bulk <= set(zeros)
    assert bulk <= set(ones)
    assert sum(x < 0 for x in zeros) > 0.4 * len(zeros)


def test_the_same_seeds_shift_count_zero_and_one_by_exactly_one() -> None:
    """With the same cell seeds, noisy counts of true 1s are exactly those of true 0s plus one."""
    seeds = cell_seeds("shift")
    zeros = noisy_counts([0] * 500, SIGMA2, seeds)
    ones = noisy_counts([1] * 500, SIGMA2, seeds)
    assert [b - a for a, b in zip(zeros, ones, strict=True)] == [1] * 500
    assert noisy_counts([0], SIGMA2, seeds)[0] + 1 == noisy_counts([1], SIGMA2, seeds)[0]


def test_noisy_counts_adds_noise_to_every_cell_including_zeros() -> None:
    """Every cell gets noise, so most cells with a true 0 come out as something other than 0."""
    counts = [0, 0, 5, 0, 12, 0, 0, 1] * 50
    noisy = noisy_counts(counts, SIGMA2, cell_seeds("every"))
    assert len(noisy) == len(counts)
    zero_cells = [y for c, y in zip(counts, noisy, strict=True) if c == 0]
    assert sum(y != 0 for y in zero_cells) > len(zero_cells) // 2


# --- determinism and seeds -----------------------------------------------------------


def test_known_answers_pin_the_byte_layout() -> None:
    """A change here gives every cell fresh noise (averaging attack): it must be deliberate."""
    seed = noise_seed(
        SECRET,
        catalogue_version=3,
        table_id="disability_by_education",
        snapshot="2025-09-30",
        cell=17,
    )
    assert seed.hex() == "361a0a144425d1252fb5d611db56b9b22b3827bd3078a54182fc8b1f9bec0dbe"
    assert DeterministicBits(seed).randbits(64) == 0x8BBE6A6487E67676
    bits = DeterministicBits(seed)
    assert [discrete_gaussian(SIGMA2, bits) for _ in range(12)] == [
        -1, 6, -4, 0, 0, 3, 4, -2, -4, -2, -7, -1,
    ]  # fmt: skip
    assert noisy_counts([0, 5, 0, 12, 1], SIGMA2, cell_seeds("disability_by_education", 3)) == [
        2, 1, -2, 16, -4,
    ]  # fmt: skip


def test_the_stream_is_libsodium_over_derived_block_seeds() -> None:
    """The bit stream is libsodium's deterministic randombytes over block seeds derived with keyed
    BLAKE2b, whether read at once or a byte at a time."""
    seed = seed_of("layout")
    blocks = b"".join(
        randombytes_buf_deterministic(
            64,
            hashlib.blake2b(
                i.to_bytes(8, "big"), digest_size=32, key=seed, person=b"childreg-block1"
            ).digest(),
        )
        for i in range(3)
    )
    assert DeterministicBits(seed).randbits(8 * len(blocks)) == int.from_bytes(blocks, "little")
    bits = DeterministicBits(seed)
    assert [bits.randbits(8) for _ in range(len(blocks))] == list(blocks)


def test_same_seed_same_values() -> None:
    """The same seed gives the same samples, and the same cell seeds give the same noisy counts."""
    a, b = DeterministicBits(seed_of("same")), DeterministicBits(seed_of("same"))
    assert [discrete_gaussian(SIGMA2, a) for _ in range(200)] == [
        discrete_gaussian(SIGMA2, b) for _ in range(200)
    ]
    seeds = cell_seeds("repeat")
    assert noisy_counts([3] * 50, SIGMA2, seeds) == noisy_counts([3] * 50, SIGMA2, seeds)


def seed_with(**changes: object) -> bytes:
    args: dict[str, object] = {
        "catalogue_version": 1,
        "table_id": "t1",
        "snapshot": "2025-09-30",
        "cell": 0,
    }
    args.update(changes)
    secret = args.pop("secret", SECRET)
    assert isinstance(secret, bytes)
    return noise_seed(secret, **args)  # type: ignore[arg-type]


def test_every_input_changes_the_seed() -> None:
    """The noise seed is 32 bytes, the same for the same inputs, and changed by a change of cell,
    table, snapshot, catalogue version or secret."""
    variants = [
        seed_with(),
        seed_with(cell=1),
        seed_with(table_id="t2"),
        seed_with(snapshot="2026-09-30"),
        seed_with(catalogue_version=2),
        seed_with(secret=bytes(32)),
        seed_with(secret=SECRET[:-1] + b"\x00"),
    ]
    assert len(set(variants)) == len(variants)
    assert all(len(s) == 32 for s in variants)
    assert seed_with() == seed_with()


def split_pairs(text: str) -> Iterable[tuple[str, str]]:
    return ((text[:i], text[i:]) for i in range(1, len(text)))


def test_length_prefixes_keep_split_strings_apart() -> None:
    """Moving characters between table id and snapshot, or value between cell and version, gives a
    different seed."""
    seeds = [seed_with(table_id=a, snapshot=b) for a, b in split_pairs("table2025-09-30")]
    assert len(set(seeds)) == len(seeds)
    assert seed_with(cell=256) != seed_with(cell=1)
    assert seed_with(catalogue_version=1, cell=2) != seed_with(catalogue_version=2, cell=1)


def test_different_cells_get_different_noise() -> None:
    """Cells with the same true count get independent noise."""
    noisy = noisy_counts([0] * 200, SIGMA2, cell_seeds("independent"))
    assert len(set(noisy)) > 10


# --- the primitives ------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 7, 10])
def test_below_is_uniform_and_in_range(n: int) -> None:
    """below(n) gives every value in [0, n) and nothing else, uniformly by a chi-square test."""
    samples = draws(lambda b: b.below(n), f"below-{n}", 30_000)
    assert set(samples) == set(range(n))
    assert chi_square_pvalue(samples, dict.fromkeys(range(n), 1 / n)) > ALPHA


def test_the_uniformity_check_rejects_modulo_bias() -> None:
    """Reducing 4 random bits modulo 10 is biased; the check above sees it."""
    biased = draws(lambda b: b.randbits(4) % 10, "modulo", 30_000)
    assert chi_square_pvalue(biased, dict.fromkeys(range(10), 1 / 10)) < ALPHA


def test_below_handles_edge_sizes() -> None:
    """below(1) is always 0, below(2) gives both values, below(2**200 + 1) stays in range using its
    width, and randbits handles 0 and 1000 bits."""
    bits = DeterministicBits(seed_of("edges"))
    assert {bits.below(1) for _ in range(100)} == {0}
    assert {bits.below(2) for _ in range(200)} == {0, 1}
    big = 2**200 + 1
    values = [bits.below(big) for _ in range(200)]
    assert all(0 <= v < big for v in values)
    assert max(values).bit_length() > 190
    assert bits.randbits(0) == 0
    assert 0 <= bits.randbits(1000) < 2**1000


def test_bernoulli_is_exact_at_the_ends_and_fair_inside() -> None:
    """bernoulli(0) is never true, bernoulli(1) always is, and bernoulli(1/3) is true a third of the
    time by a binomial test."""
    bits = DeterministicBits(seed_of("bernoulli"))
    assert not any(bits.bernoulli(Fraction(0)) for _ in range(1000))
    assert all(bits.bernoulli(Fraction(1)) for _ in range(1000))
    n = 30_000
    hits = sum(bits.bernoulli(Fraction(1, 3)) for _ in range(n))
    assert stats.binomtest(hits, n, 1 / 3).pvalue > ALPHA


def test_the_sampler_accepts_any_bit_source() -> None:
    """Both bit sources satisfy the BitSource protocol, and the system one drives the sampler to
    varied ints."""
    assert isinstance(DeterministicBits(seed_of("p")), BitSource)
    system = SystemBits()
    assert isinstance(system, BitSource)
    values = [discrete_gaussian(SIGMA2, system) for _ in range(100)]
    assert all(type(v) is int for v in values)
    assert len(set(values)) > 3


# --- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [Fraction(0), Fraction(-1, 2), 0, -4, 0.5, 16.0, True, "16"])
def test_bad_variances_are_refused(bad: object) -> None:
    """A zero, negative, float, bool or string variance is refused by the sampler and by
    noisy_counts, naming sigma_squared."""
    bits = DeterministicBits(seed_of("bad"))
    with pytest.raises(ValueError, match="sigma_squared"):
        discrete_gaussian(bad, bits)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sigma_squared"):
        noisy_counts([1], bad, cell_seeds("bad"))  # type: ignore[arg-type]


def test_other_bad_sampler_inputs_are_refused() -> None:
    """A negative or float gamma, a zero Laplace scale, a count that is not a natural number and a
    short seed are refused, each naming its input."""
    bits = DeterministicBits(seed_of("bad"))
    with pytest.raises(ValueError, match="gamma"):
        bernoulli_exp(Fraction(-1, 3), bits)
    with pytest.raises(ValueError, match="gamma"):
        bernoulli_exp(0.5, bits)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale"):
        discrete_laplace(Fraction(0), bits)
    for counts in ([-1], [1.0], [True], ["3"]):
        with pytest.raises(ValueError, match="count 0"):
            noisy_counts(counts, SIGMA2, cell_seeds("bad"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        noisy_counts([1], SIGMA2, lambda i: b"short")


def test_bad_prng_inputs_are_refused() -> None:
    """Bad secrets, cells, versions, ids, seeds, bounds, bit counts and probabilities are refused by
    the bit source, each naming its input."""
    for secret in (b"", bytes(31), bytes(33), "x" * 32):
        with pytest.raises(ValueError, match="secret"):
            noise_seed(
                secret,  # type: ignore[arg-type]
                catalogue_version=1,
                table_id="t",
                snapshot="s",
                cell=0,
            )
    for field, value in [
        ("cell", -1),
        ("cell", 2**64),
        ("cell", True),
        ("cell", 1.0),
        ("catalogue_version", -1),
        ("table_id", ""),
        ("snapshot", ""),
        ("table_id", 7),
    ]:
        with pytest.raises(ValueError, match=field):
            seed_with(**{field: value})
    for seed in (b"", bytes(31), bytes(64)):
        with pytest.raises(ValueError, match="seed"):
            DeterministicBits(seed)
    bits = DeterministicBits(seed_of("bad"))
    for n in (0, -3):
        with pytest.raises(ValueError, match="n must"):
            bits.below(n)
    with pytest.raises(ValueError, match="k must"):
        bits.randbits(-1)
    for p in (Fraction(-1, 2), Fraction(3, 2), 0.5, True):
        with pytest.raises(ValueError, match="p must"):
            bits.bernoulli(p)  # type: ignore[arg-type]
