"""Privacy accounting under zero-concentrated DP (zCDP), in exact fractions where it matters.

A table in which each child falls in exactly one cell has L2 sensitivity 1; discrete
Gaussian noise of variance σ² on every cell then costs ρ = 1/(2σ²) (Canonne, Kamath,
Steinke 2020, "The Discrete Gaussian for Differential Privacy", Thm. 4 and Prop. 1.6).
Costs add up over tables. The equivalent (ε, δ) uses the tight conversion of their
Corollary 13, minimised numerically over the Rényi order (display only: the budget
itself is kept in exact ρ fractions, so no rounding ever lets a query through).

Pure Python on purpose: nodes import this module, and a node's memory is budgeted
(numpy and scipy would add tens of MB for one number shown in a table).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

#: Two-sided 95 % quantile of the standard normal distribution.
Z95 = 1.959963984540054

#: Upper bound on a denominator when a ρ is written as a decimal or fraction.
_MAX_DENOMINATOR = 10**12


def parse_rho(text: str | Fraction) -> Fraction:
    """A positive ρ from "1/32", "0.03125" or a Fraction; ValueError says what is wrong."""
    if isinstance(text, Fraction):
        value = text
    else:
        try:
            value = Fraction(str(text).strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError("must be a fraction such as 1/32 or a decimal such as 0.25") from None
    if value <= 0:
        raise ValueError("must be greater than 0")
    if value.denominator > _MAX_DENOMINATOR:
        raise ValueError("has too many digits")
    return value


def format_rho(value: Fraction) -> str:
    """The exact text of a fraction: "1/32", or "1" for whole numbers."""
    return str(value)


def sigma_squared(rho: Fraction) -> Fraction:
    """Per-cell noise variance that costs exactly ``rho`` for a sensitivity-1 table."""
    if rho <= 0:
        raise ValueError("rho must be greater than 0")
    return 1 / (2 * rho)


def rho_for_sigma_squared(variance: Fraction) -> Fraction:
    """The zCDP cost of one sensitivity-1 table with per-cell noise variance ``variance``."""
    if variance <= 0:
        raise ValueError("variance must be greater than 0")
    return 1 / (2 * variance)


def epsilon(rho: Fraction | float, delta: float) -> float:
    """The smallest ε with ρ-zCDP ⇒ (ε, δ)-DP by CKS 2020 Corollary 13.

    ε = inf over α > 1 of αρ + (log(1/δ) + (α−1)·log(1−1/α) − log α) / (α−1).
    """
    r = float(rho)
    if r <= 0:
        raise ValueError("rho must be greater than 0")
    if not 0 < delta < 1:
        raise ValueError("delta must lie strictly between 0 and 1")
    log_inv_delta = math.log(1 / delta)

    def bound(alpha: float) -> float:
        return alpha * r + (
            log_inv_delta + (alpha - 1) * math.log1p(-1 / alpha) - math.log(alpha)
        ) / (alpha - 1)

    simple = r + 2 * math.sqrt(r * log_inv_delta)  # CKS Prop. 1.3's looser, closed form
    return min(_minimise(bound, 1.0 + 1e-9, 1e7), simple)


def _minimise(f: Callable[[float], float], low: float, high: float) -> float:
    """The minimum of a unimodal ``f`` on [low, high]: a log-spaced scan, then golden section."""
    grid = [low * (high / low) ** (i / 400) for i in range(401)]
    values = [f(x) for x in grid]
    k = min(range(len(grid)), key=values.__getitem__)
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(100):
        if f(c) < f(d):
            b, d = d, c
            c = b - ratio * (b - a)
        else:
            a, c = c, d
            d = a + ratio * (b - a)
    return min(values[k], f((a + b) / 2))


def margin95(variance: Fraction | float) -> int:
    """The 95 % margin of error of a sum of noises with total variance ``variance``.

    The sum of independent discrete Gaussians is close to normal; the margin is rounded
    up to a whole number because published values are whole numbers.
    """
    v = float(variance)
    if v < 0:
        raise ValueError("variance must not be negative")
    return math.ceil(Z95 * math.sqrt(v) - 1e-12)
