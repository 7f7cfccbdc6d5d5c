"""Shamir secret sharing over the prime field of p = 2⁵²¹ − 1 (a Mersenne prime).

Why this module exists: dropout-tolerant secure aggregation (docs/secure-aggregation.md,
after Bonawitz et al. 2017) has every node split two 32-byte secrets of a round — its self
mask seed and its round mask key — among the round's participants, so that any ``t`` of
them can rebuild either one for the coordinator and fewer than ``t`` learn nothing. A
polynomial of degree t − 1 with the secret as constant term, evaluated at the points
x = 1 … n, is the textbook construction; p exceeds every 32-byte secret, so a secret is
one field element.

The coefficients are given by the caller (the node derives them from its own secret and the
round, so that being asked twice gives the same shares and reveals nothing more). Pure
integers, no I/O; the Lagrange weights at zero are computed once per set of points so that
rebuilding many secrets from the same holders costs O(t) each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

__all__ = [
    "PRIME",
    "SHARE_BYTES",
    "evaluate",
    "from_bytes",
    "lagrange_weights",
    "reconstruct",
    "split",
    "to_bytes",
]

#: 2⁵²¹ − 1 is prime; every share is an integer in [0, PRIME).
PRIME: Final = 2**521 - 1
#: Bytes of one share on the wire (big-endian, 521 bits rounded up).
SHARE_BYTES: Final = 66


def evaluate(coefficients: Sequence[int], x: int) -> int:
    """The polynomial with ``coefficients`` (constant term first) at ``x``, modulo PRIME."""
    acc = 0
    for c in reversed(coefficients):
        acc = (acc * x + c) % PRIME
    return acc


def split(secret: int, coefficients: Sequence[int], points: Sequence[int]) -> dict[int, int]:
    """The shares of ``secret`` at ``points`` under a polynomial of degree len(coefficients).

    The threshold is ``len(coefficients) + 1``: that many shares rebuild the secret, fewer
    leave every value of it equally likely. ValueError for a secret or coefficient outside
    the field, or a point that is zero, outside the field or repeated.
    """
    if not 0 <= secret < PRIME or any(not 0 <= c < PRIME for c in coefficients):
        raise ValueError("secret and coefficients must lie in [0, PRIME)")
    if len(set(points)) != len(points) or any(not 0 < x < PRIME for x in points):
        raise ValueError("points must be distinct and in (0, PRIME)")
    poly = (secret, *coefficients)
    return {x: evaluate(poly, x) for x in points}


def lagrange_weights(points: Sequence[int]) -> dict[int, int]:
    """The weights w_x with Σ w_x·f(x) = f(0) for every polynomial of degree < len(points).

    w_x = Π_{y≠x} y / Π_{y≠x} (y − x) over the other points y. The points are the holders'
    positions 1 … n of a round with a few of them missing, so both products are read off
    factorials of 1 … M (M the largest point) divided by the few missing positions' terms:
    O(M + t·(M − t)) field products and one inversion (batched), not t² products and t
    inversions. Points spread wider than that (M ≥ 2t) take the direct products.
    """
    if len(set(points)) != len(points) or any(not 0 < x < PRIME for x in points):
        raise ValueError("points must be distinct and in (0, PRIME)")
    if not points:
        return {}
    top = max(points)
    if top >= 2 * len(points):
        return _direct_weights(points)
    present = set(points)
    missing = [y for y in range(1, top + 1) if y not in present]
    fact = [1] * (top + 1)  # fact[k] = k! mod p
    for k in range(1, top + 1):
        fact[k] = fact[k - 1] * k % PRIME
    missing_product = 1
    for y in missing:
        missing_product = missing_product * y % PRIME
    # w_x = top!·Q_x / (x·Πmissing·F_x), with F_x = Π_{y≠x, 1≤y≤top} (y − x)
    # = (−1)^(x−1)·(x−1)!·(top−x)! and Q_x = Π_{y missing} (y − x).
    quotients: list[int] = []
    denominators: list[int] = []
    for x in points:
        f = fact[x - 1] * fact[top - x] % PRIME
        if (x - 1) % 2:
            f = PRIME - f
        q = 1
        for y in missing:
            q = q * (y - x) % PRIME
        quotients.append(q)
        denominators.append(x * missing_product % PRIME * f % PRIME)
    inverses = _batch_inverse(denominators)
    return {
        x: fact[top] * q % PRIME * inv % PRIME
        for x, q, inv in zip(points, quotients, inverses, strict=True)
    }


def _direct_weights(points: Sequence[int]) -> dict[int, int]:
    """The Lagrange weights at zero by the direct products (any distinct points)."""
    weights: dict[int, int] = {}
    for x in points:
        num, den = 1, 1
        for other in points:
            if other != x:
                num = num * other % PRIME
                den = den * (other - x) % PRIME
        weights[x] = num * pow(den, -1, PRIME) % PRIME
    return weights


def _batch_inverse(values: Sequence[int]) -> list[int]:
    """The inverses of nonzero field elements with one modular inversion (Montgomery's
    trick: prefix products, one inverse, then back)."""
    prefix = [1] * (len(values) + 1)
    for k, v in enumerate(values):
        prefix[k + 1] = prefix[k] * v % PRIME
    inv = pow(prefix[-1], -1, PRIME)
    out = [0] * len(values)
    for k in range(len(values) - 1, -1, -1):
        out[k] = inv * prefix[k] % PRIME
        inv = inv * values[k] % PRIME
    return out


def reconstruct(shares: Mapping[int, int], weights: Mapping[int, int] | None = None) -> int:
    """The secret from shares {x: f(x)} (each in [0, PRIME)): exact when there are at least
    ``threshold`` of them.

    ``weights`` (from :func:`lagrange_weights` over exactly these points) saves their
    computation when many secrets are rebuilt from the same holders.
    """
    if not shares:
        raise ValueError("no shares to reconstruct from")
    w = weights if weights is not None else lagrange_weights(list(shares))
    if set(w) != set(shares):
        raise ValueError("the weights are for other points than the shares")
    return sum(w[x] * y for x, y in shares.items()) % PRIME


def to_bytes(share: int) -> bytes:
    """A share as :data:`SHARE_BYTES` big-endian bytes."""
    return share.to_bytes(SHARE_BYTES, "big")


def from_bytes(raw: bytes) -> int:
    """A share from its bytes; ValueError when it is not a field element."""
    if len(raw) != SHARE_BYTES:
        raise ValueError(f"a share is {SHARE_BYTES} bytes")
    value = int.from_bytes(raw, "big")
    if value >= PRIME:
        raise ValueError("a share must lie in [0, PRIME)")
    return value
