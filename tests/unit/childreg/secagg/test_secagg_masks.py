"""Pairwise masks (PRIVACY.md stage 2): exact sum, uniform single upload, no partial unmasking.

Keys are derived from fixed seeds so every run is reproducible; the plain vectors come from a
seeded numpy generator (tests only; the masks themselves use libsodium).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from nacl.public import PrivateKey, PublicKey
from scipy import stats

from childreg.secagg.masks import (
    MODULUS,
    mask_stream,
    masked,
    pair_seed,
    unmask_sum,
)

ROUND = {
    "round_id": "r-1",
    "table_id": "children_by_age_dept",
    "snapshot": "2025-09",
    "context": '{"catalogue_version":1}',
}


def keys(n: int) -> dict[str, PrivateKey]:
    """n deterministic participants with ids dept-000 ... (lexicographic = numeric order)."""
    return {
        f"dept-{i:03d}": PrivateKey(hashlib.sha256(f"secagg-test-key-{i}".encode()).digest())
        for i in range(n)
    }


def plain_vectors(ids: list[str], length: int, seed: int) -> dict[str, list[int]]:
    rng = np.random.default_rng(seed)
    return {i: [int(v) for v in rng.integers(-1_000_000, 1_000_000, size=length)] for i in ids}


def uploads_for(privs: dict[str, PrivateKey], plain: dict[str, list[int]]) -> dict[str, list[int]]:
    pubs = {i: k.public_key for i, k in privs.items()}
    return {
        i: masked(plain[i], k, i, {j: p for j, p in pubs.items() if j != i}, **ROUND)
        for i, k in privs.items()
    }


def exact_sum(plain: dict[str, list[int]]) -> list[int]:
    return [sum(col) for col in zip(*plain.values(), strict=True)]


# -- the sum ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "length"), [(3, 2_000), (10, 1_000), (50, 1_000)])
def test_all_uploads_unmask_to_the_exact_sum(n: int, length: int) -> None:
    """The masked uploads of 3, 10 or 50 nodes sum to the exact total, negatives included, though no
    upload equals its plain vector in any cell."""
    privs = keys(n)
    plain = plain_vectors(list(privs), length, seed=n)
    plain[next(iter(plain))][:3] = [-(2**40), 0, -1]  # negatives survive two's complement
    ups = uploads_for(privs, plain)
    assert all(0 <= v < MODULUS for u in ups.values() for v in u)
    assert unmask_sum(ups.values()) == exact_sum(plain)
    # and no upload equals its plain vector (mod 2^64) in any cell
    for i, u in ups.items():
        assert all(a != b % MODULUS for a, b in zip(u, plain[i], strict=True))


def test_a_missing_upload_never_unmasks() -> None:
    """Without any one node's upload the rest sum to neither the total nor the answerers' sum, but
    to values spread over the whole int64 range."""
    privs = keys(5)
    plain = plain_vectors(list(privs), 2_000, seed=7)
    ups = uploads_for(privs, plain)
    full = exact_sum(plain)
    for missing in privs:
        rest = [u for i, u in ups.items() if i != missing]
        partial = unmask_sum(rest)
        partial_truth = exact_sum({i: v for i, v in plain.items() if i != missing})
        # every cell differs from both the national sum and the sum of those who answered
        assert all(a != b for a, b in zip(partial, full, strict=True))
        assert all(a != b for a, b in zip(partial, partial_truth, strict=True))
        # and what comes out is spread over the whole int64 range, not near any count
        assert sum(abs(v) > 2**60 for v in partial) > 0.8 * len(partial)


# -- a single upload looks uniform -------------------------------------------------------------


def _top_byte_pvalue(values: list[int]) -> float:
    counts = np.bincount([(v % MODULUS) >> 56 for v in values], minlength=256)
    return float(stats.chisquare(counts).pvalue)


def _low_byte_pvalue(values: list[int]) -> float:
    counts = np.bincount([v & 0xFF for v in values], minlength=256)
    return float(stats.chisquare(counts).pvalue)


def test_a_single_upload_is_indistinguishable_from_uniform() -> None:
    """Each masked upload's top and low bytes look uniform to a chi-square test that rejects the
    unmasked vector outright."""
    privs = keys(3)
    length = 20_000
    rng = np.random.default_rng(11)
    # realistic noisy counts: mostly small, many zeros, a few negatives
    plain = {i: [int(v) for v in rng.poisson(3, size=length) - 2] for i in privs}
    ups = uploads_for(privs, plain)
    for u in ups.values():
        assert _top_byte_pvalue(u) > 1e-4
        assert _low_byte_pvalue(u) > 1e-4
    # the same test has power: it rejects the unmasked vector outright
    one = next(iter(plain.values()))
    assert _top_byte_pvalue(one) < 1e-12
    assert _low_byte_pvalue(one) < 1e-12


def test_two_rounds_of_one_node_do_not_difference_to_x1_minus_x2() -> None:
    """Two rounds' uploads of one node do not difference to its plain difference in any cell, and
    the same round id reproduces the same upload."""
    privs = keys(3)
    me = "dept-001"
    pubs = {i: k.public_key for i, k in privs.items() if i != me}
    rng = np.random.default_rng(3)
    x1 = [int(v) for v in rng.integers(-50, 500, size=1_000)]
    x2 = [v + int(d) for v, d in zip(x1, rng.integers(-3, 4, size=1_000), strict=True)]
    u1 = masked(x1, privs[me], me, pubs, **{**ROUND, "round_id": "r-1"})
    u2 = masked(x2, privs[me], me, pubs, **{**ROUND, "round_id": "r-2"})
    diff = [(a - b) % MODULUS for a, b in zip(u1, u2, strict=True)]
    plain_diff = [(a - b) % MODULUS for a, b in zip(x1, x2, strict=True)]
    assert all(d != p for d, p in zip(diff, plain_diff, strict=True))
    # the masks are a function of the round: the same round id reproduces the same upload,
    # which is why a retry must use a fresh round id
    assert masked(x1, privs[me], me, pubs, **{**ROUND, "round_id": "r-1"}) == u1


# -- pair seeds ------------------------------------------------------------------------------


def _seed(a: str, b: str, privs: dict[str, PrivateKey], **over: str) -> bytes:
    return pair_seed(privs[a], privs[b].public_key, my_id=a, peer_id=b, **{**ROUND, **over})


def test_pair_seed_is_symmetric_and_bound_to_round_table_snapshot() -> None:
    """A pair seed is 32 bytes, the same from both sides, and changed by the peer, round, table,
    snapshot, context or a character moved between fields."""
    privs = keys(3)
    a, b, c = list(privs)
    s = _seed(a, b, privs)
    assert len(s) == 32
    assert s == _seed(b, a, privs)
    assert s != _seed(a, c, privs)
    assert s != _seed(a, b, privs, round_id="r-2")
    assert s != _seed(a, b, privs, table_id="other_table")
    assert s != _seed(a, b, privs, snapshot="2026-03")
    assert s != _seed(a, b, privs, context='{"catalogue_version":2}')  # the whole round
    # length-prefixed: moving a character between fields changes the seed
    assert _seed(a, b, privs, round_id="ab", table_id="c") != _seed(
        a, b, privs, round_id="a", table_id="bc"
    )


def test_pair_seed_depends_on_the_keys_not_only_on_the_ids() -> None:
    """A pair seed made with another private key under the same ids differs from the real one."""
    privs = keys(2)
    a, b = list(privs)
    other = PrivateKey(hashlib.sha256(b"an impostor").digest())
    forged = pair_seed(other, privs[b].public_key, my_id=a, peer_id=b, **ROUND)
    assert forged != _seed(a, b, privs)


def test_refusals() -> None:
    """A pair with itself, an all-zero key, a node among its own peers, fewer than 3 nodes, out-of-
    range or float values, bad uploads, no uploads and a short seed are refused."""
    privs = keys(3)
    a, b, c = list(privs)
    with pytest.raises(ValueError, match="itself"):
        _seed(a, a, privs)
    with pytest.raises(ValueError, match="all-zero"):
        pair_seed(privs[a], PublicKey(bytes(32)), my_id=a, peer_id=b, **ROUND)
    pubs = {i: k.public_key for i, k in privs.items()}
    with pytest.raises(ValueError, match="among the peers"):
        masked([1, 2], privs[a], a, pubs, **ROUND)
    with pytest.raises(ValueError, match="at least 3"):
        masked([1, 2], privs[a], a, {b: pubs[b]}, **ROUND)
    with pytest.raises(ValueError, match="int64"):
        masked([2**63], privs[a], a, {b: pubs[b], c: pubs[c]}, **ROUND)
    with pytest.raises(TypeError):
        masked([1.5], privs[a], a, {b: pubs[b], c: pubs[c]}, **ROUND)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="different lengths"):
        unmask_sum([[1, 2], [3]])
    with pytest.raises(ValueError, match=r"\[0, 2\*\*64\)"):
        unmask_sum([[1, MODULUS]])
    with pytest.raises(ValueError, match=r"\[0, 2\*\*64\)"):
        unmask_sum([[-1]])
    with pytest.raises(ValueError, match="no uploads"):
        unmask_sum([])
    with pytest.raises(ValueError, match="32 bytes"):
        mask_stream(b"short", 4)


def test_mask_stream_is_deterministic_uint64() -> None:
    """The mask stream is deterministic, uint64-valued, a prefix of its longer self, changed by the
    seed, and empty at length 0."""
    seed = bytes(range(32))
    s = mask_stream(seed, 1_000)
    assert s == mask_stream(seed, 1_000)
    assert mask_stream(seed, 10) == s[:10]
    assert all(0 <= v < MODULUS for v in s)
    assert s != mask_stream(bytes(range(1, 33)), 1_000)
    assert mask_stream(seed, 0) == []


def test_unmask_sum_decodes_signed_int64() -> None:
    """unmask_sum reads the total modulo 2**64 as a signed int64."""
    assert unmask_sum([[MODULUS - 1, 5], [0, 2**63 - 6]]) == [-1, 2**63 - 1]
    assert unmask_sum([[2**63]]) == [-(2**63)]
