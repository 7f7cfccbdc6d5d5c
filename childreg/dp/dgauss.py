"""Exact sampling of the discrete Gaussian, the noise every published count carries.

This is Canonne, Kamath, Steinke 2020, "The Discrete Gaussian for Differential Privacy"
(NeurIPS 2020, arXiv:2004.00010), Algorithms 1-3, with integer and rational arithmetic
only. Floating-point samplers leak through the gaps and rounding of their outputs
(Mironov 2012, "On significance of the least significant bits for differential privacy"),
so no float takes part in any sampling decision here: every probability is an exact
fraction and every coin is ``below(denominator) < numerator`` on a :class:`BitSource`.

* :func:`bernoulli_exp` — a coin with P(True) = exp(−γ) for rational γ ≥ 0 (Algorithm 1).
* :func:`discrete_laplace` — P(x) ∝ exp(−|x|/t) on the integers, t rational (Algorithm 2).
* :func:`discrete_gaussian` — P(x) ∝ exp(−x²/(2σ²)) on the integers (Algorithm 3).
* :func:`noisy_counts` — a table's cells plus independent, reproducible noise per cell.

Noise is added to every cell, zeros included, and the result is never clamped: a noisy
count can be negative, and true counts 0 and 1 have the same support. The order in which
bits are consumed is part of the reproducibility contract (see ``childreg.dp.prng``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from fractions import Fraction

from childreg.dp.prng import BitSource, DeterministicBits

__all__ = ["bernoulli_exp", "discrete_gaussian", "discrete_laplace", "noisy_counts"]


def _exact(name: str, value: Fraction | int) -> Fraction:
    """``value`` as a Fraction; floats (inexact) and bools are refused."""
    if isinstance(value, bool) or not isinstance(value, Fraction | int):
        raise ValueError(f"{name} must be a Fraction or an int, not {type(value).__name__}")
    return Fraction(value)


def _bern_exp_unit(num: int, den: int, bits: BitSource) -> bool:
    """P(True) = exp(−num/den) for 0 ≤ num ≤ den (Algorithm 1, the γ ∈ [0, 1] case).

    Draw A_k ~ Bernoulli(γ/k) for k = 1, 2, … until the first A_k = 0; return True when
    that k is odd. P(K > k) = γ^k / k!, so P(K odd) = Σ (−γ)^j / j! = exp(−γ).
    """
    below = bits.below
    k = 1
    while below(den * k) < num:
        k += 1
    return k % 2 == 1


def _bern_exp(num: int, den: int, bits: BitSource) -> bool:
    """P(True) = exp(−num/den) for num ≥ 0, den ≥ 1 (Algorithm 1).

    For γ > 1: ⌊γ⌋ independent exp(−1) coins must all succeed, then one exp(−(γ − ⌊γ⌋)).
    """
    whole, rest = divmod(num, den)
    for _ in range(whole):
        if not _bern_exp_unit(1, 1, bits):
            return False
    if rest == 0:
        return True
    g = math.gcd(rest, den)
    return _bern_exp_unit(rest // g, den // g, bits)


def _discrete_laplace(s: int, t: int, bits: BitSource) -> int:
    """One draw with P(x) ∝ exp(−|x|·s/t), for integers s, t ≥ 1 (Algorithm 2).

    X = U + t·V with U uniform on {0..t−1} accepted with probability exp(−U/t) and V
    geometric (exp(−1) continuation coins) is geometric with ratio exp(−1/t); ⌊X/s⌋ is then
    geometric with ratio exp(−s/t). A random sign, rejecting "−0", gives the two-sided law.
    """
    below = bits.below
    while True:
        u = below(t)
        if not _bern_exp(u, t, bits):
            continue
        v = 0
        while _bern_exp_unit(1, 1, bits):
            v += 1
        y = (u + t * v) // s
        negative = below(2)
        if negative and y == 0:
            continue
        return -y if negative else y


def bernoulli_exp(gamma: Fraction | int, bits: BitSource) -> bool:
    """True with probability exactly exp(−γ), for rational γ ≥ 0 (CKS 2020, Algorithm 1)."""
    g = _exact("gamma", gamma)
    if g < 0:
        raise ValueError("gamma must not be negative")
    return _bern_exp(g.numerator, g.denominator, bits)


def discrete_laplace(scale: Fraction | int, bits: BitSource) -> int:
    """One integer with P(x) ∝ exp(−|x|/scale), rational scale > 0 (CKS 2020, Algorithm 2)."""
    t = _exact("scale", scale)
    if t <= 0:
        raise ValueError("scale must be greater than 0")
    return _discrete_laplace(t.denominator, t.numerator, bits)


def discrete_gaussian(sigma_squared: Fraction | int, bits: BitSource) -> int:
    """One integer with P(x) ∝ exp(−x²/(2σ²)), rational σ² > 0 (CKS 2020, Algorithm 3).

    A discrete Laplace proposal with scale t = ⌊σ⌋ + 1 is accepted with probability
    exp(−(|Y| − σ²/t)² / (2σ²)). With σ² = a/b that exponent is (|Y|·b·t − a)² / (2·a·b·t²),
    an exact fraction. Returns a Python int.
    """
    variance = _exact("sigma_squared", sigma_squared)
    if variance <= 0:
        raise ValueError("sigma_squared must be greater than 0")
    a, b = variance.numerator, variance.denominator
    t = math.isqrt(a // b) + 1  # ⌊√(a/b)⌋ = isqrt(⌊a/b⌋)
    den = 2 * a * b * t * t
    bt = b * t
    while True:
        y = _discrete_laplace(1, t, bits)
        offset = abs(y) * bt - a
        if _bern_exp(offset * offset, den, bits):
            return y


def noisy_counts(
    counts: Sequence[int],
    sigma_squared: Fraction | int,
    seed_for_cell: Callable[[int], bytes],
) -> list[int]:
    """Each ``counts[i]`` plus discrete Gaussian noise drawn from ``seed_for_cell(i)``.

    Every cell gets noise, zeros included; nothing is clamped, so results may be negative.
    The same seeds give the same answer. Counts must be non-negative integers; the results
    are Python ints even when the counts are numpy integers.
    """
    variance = _exact("sigma_squared", sigma_squared)
    if variance <= 0:
        raise ValueError("sigma_squared must be greater than 0")
    out: list[int] = []
    for i, count in enumerate(counts):
        if isinstance(count, bool):
            raise ValueError(f"count {i} must be an int, not bool")
        try:
            value = operator.index(count)
        except TypeError:
            raise ValueError(f"count {i} must be an int, not {type(count).__name__}") from None
        if value < 0:
            raise ValueError(f"count {i} must not be negative")
        noise = discrete_gaussian(variance, DeterministicBits(seed_for_cell(i)))
        out.append(int(value) + noise)
    return out
