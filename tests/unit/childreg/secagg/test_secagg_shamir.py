"""Shamir sharing over 2⁵²¹ − 1 (childreg/secagg/shamir.py): its textbook properties."""

from __future__ import annotations

import itertools
import secrets

import pytest

from childreg.secagg import shamir
from childreg.secagg.shamir import PRIME


def _coefficients(degree: int) -> list[int]:
    return [secrets.randbelow(PRIME) for _ in range(degree)]


def test_the_modulus_is_the_mersenne_prime_2_521_minus_1() -> None:
    """The field's modulus is 2⁵²¹ − 1 and passes a Fermat test to several bases."""
    assert PRIME == 2**521 - 1
    assert all(pow(a, PRIME - 1, PRIME) == 1 for a in (2, 3, 5, 7, 11, 13))


def test_every_t_subset_of_shares_rebuilds_the_secret() -> None:
    """Any t of n shares give back the secret, whichever t are chosen."""
    secret = secrets.randbits(256)
    t, n = 3, 6
    shares = shamir.split(secret, _coefficients(t - 1), list(range(1, n + 1)))
    for subset in itertools.combinations(shares, t):
        assert shamir.reconstruct({x: shares[x] for x in subset}) == secret


def test_more_than_t_shares_rebuild_it_too() -> None:
    """All n shares (more than the threshold) still rebuild the same secret."""
    secret = secrets.randbits(256)
    shares = shamir.split(secret, _coefficients(2), list(range(1, 8)))
    assert shamir.reconstruct(shares) == secret


def test_fewer_than_t_shares_are_consistent_with_every_secret() -> None:
    """For t − 1 shares and any candidate secret there is a polynomial of degree t − 1 with
    that constant term through all of them (so they leave every secret possible), and
    interpolating the t − 1 shares alone does not give the secret."""
    t = 4
    secret = secrets.randbits(256)
    shares = shamir.split(secret, _coefficients(t - 1), [1, 2, 3, 4, 5])
    seen = {x: shares[x] for x in (2, 3, 5)}  # t − 1 of them
    assert shamir.reconstruct(seen) != secret
    for candidate in (0, 1, secret ^ 1, PRIME - 1):
        through = {0: candidate, **seen}  # t points: one polynomial of degree t − 1
        coefficients = _solve(through)
        assert coefficients[0] == candidate
        assert all(shamir.evaluate(coefficients, x) == y for x, y in seen.items())


def _solve(points: dict[int, int]) -> list[int]:
    """The coefficients (constant first) of the polynomial through ``points`` (Gauss mod p)."""
    xs = list(points)
    rows = [[pow(x, k, PRIME) for k in range(len(xs))] + [points[x]] for x in xs]
    n = len(xs)
    for col in range(n):
        pivot = next(r for r in range(col, n) if rows[r][col])
        rows[col], rows[pivot] = rows[pivot], rows[col]
        inv = pow(rows[col][col], -1, PRIME)
        rows[col] = [v * inv % PRIME for v in rows[col]]
        for r in range(n):
            if r != col and rows[r][col]:
                f = rows[r][col]
                rows[r] = [(a - f * b) % PRIME for a, b in zip(rows[r], rows[col], strict=True)]
    return [rows[k][n] for k in range(n)]


def test_the_same_coefficients_give_the_same_shares() -> None:
    """Splitting twice with the same coefficients gives identical shares (a node asked
    twice reveals nothing new)."""
    coefficients = _coefficients(2)
    assert shamir.split(42, coefficients, [1, 2, 3]) == shamir.split(42, coefficients, [1, 2, 3])


def test_cached_weights_rebuild_many_secrets_from_the_same_holders() -> None:
    """Lagrange weights computed once rebuild every secret shared over the same points."""
    xs = [2, 5, 7]
    weights = shamir.lagrange_weights(xs)
    for _ in range(5):
        secret = secrets.randbits(256)
        shares = shamir.split(secret, _coefficients(2), [1, 2, 3, 4, 5, 6, 7])
        assert shamir.reconstruct({x: shares[x] for x in xs}, weights) == secret


@pytest.mark.parametrize(
    "points",
    [
        [1],
        [3],
        [1, 2, 3, 4, 5],
        [5, 4, 3, 2, 1],
        [2, 3, 5, 6, 7, 8],  # 1 and 4 missing (departments dropped)
        [7, 1, 4],  # spread wide: the direct products
        [1000, 3, 77],
        [p for p in range(1, 61) if p not in (7, 33)],
    ],
)
def test_lagrange_weights_rebuild_the_constant_term_for_any_holders(points: list[int]) -> None:
    """The weights (read off factorials when few positions are missing, direct products
    otherwise) equal the textbook Π y / Π (y − x) and rebuild a secret of degree len − 1."""
    weights = shamir.lagrange_weights(points)
    for x in points:
        others = [y for y in points if y != x]
        num = den = 1
        for y in others:
            num, den = num * y % PRIME, den * (y - x) % PRIME
        assert weights[x] == num * pow(den, -1, PRIME) % PRIME
    secret = secrets.randbits(256)
    shares = shamir.split(secret, _coefficients(len(points) - 1), points)
    assert shamir.reconstruct(shares, weights) == secret


@pytest.mark.parametrize("points", [[0, 1, 2], [1, 1, 2], [1, PRIME]])
def test_bad_points_are_refused(points: list[int]) -> None:
    """A zero, repeated or out-of-field point is refused."""
    with pytest.raises(ValueError, match="points"):
        shamir.split(1, [2, 3], points)


def test_shares_round_trip_through_bytes_and_out_of_field_bytes_are_refused() -> None:
    """A share survives its 66-byte encoding; bytes of a value ≥ p or of another length fail."""
    share = PRIME - 1
    assert shamir.from_bytes(shamir.to_bytes(share)) == share
    with pytest.raises(ValueError, match="PRIME"):
        shamir.from_bytes(PRIME.to_bytes(shamir.SHARE_BYTES, "big"))
    with pytest.raises(ValueError, match="bytes"):
        shamir.from_bytes(b"\x00" * 10)
