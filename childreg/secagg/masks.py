"""Pairwise additive masks: one department's upload looks uniform, the masks cancel in the sum.

Why this module exists: in stage 2 of docs/design/privacy.md ("Two stages") each department
adds only a share of the noise, so its vector alone is *not* private enough to show the
coordinator. Every pair of participants (i, j) derives a common seed from an X25519
agreement; the node with the smaller id adds the mask stream expanded from it, the other
subtracts it, all modulo 2⁶⁴. Any single upload (or any strict subset of the uploads) is
then uniformly distributed; only the sum of *all* uploads of a round makes every mask cancel
and reveals the noisy national vector.

This is the pairwise-masking core of Bonawitz et al. 2017 ("Practical Secure Aggregation for
Privacy-Preserving Machine Learning", CCS); its dropout recovery (secret-shared round keys,
double masking) is childreg/secagg/recovery.py, which agrees the pair seeds here from each
round's fresh mask keys. A retry must use a fresh round id so that the masks are fresh
(reusing them would let the coordinator difference two uploads of the same node).

Pure functions, no I/O, no clock: PyNaCl (X25519, libsodium's deterministic generator) and
hashlib (keyed BLAKE2b) only. Nothing from ``random`` or ``numpy``.
"""

from __future__ import annotations

import hashlib
import operator
import struct
from collections.abc import Iterable, Mapping, Sequence

import nacl.bindings
from nacl.public import PrivateKey, PublicKey

__all__ = [
    "MIN_PARTICIPANTS",
    "MODULUS",
    "SEED_BYTES",
    "mask_stream",
    "masked",
    "pair_seed",
    "unmask_sum",
]

#: All arithmetic on uploads is modulo 2⁶⁴ (uint64 on the wire, int64 once decoded).
MODULUS = 2**64
_HALF = 2**63
#: Length of a pair seed; libsodium's ``randombytes_buf_deterministic`` takes exactly this.
SEED_BYTES = 32
#: A round needs at least 3 distinct departments (docs/design/privacy.md): with fewer, the
#: sum and one's own vector reveal the other's. ``masked`` therefore refuses fewer than 2 peers.
MIN_PARTICIPANTS = 3
#: BLAKE2b personalisation (16 bytes): domain separation from every other use of the keys.
_PERSON = b"childreg-secagg1"
#: Version tag at the start of the KDF input, so a later encoding can never collide with this.
_KDF_TAG = b"childreg/secagg/pair-seed/v1"


def _field(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


def pair_seed(
    my_private: PrivateKey,
    peer_public: PublicKey,
    *,
    my_id: str,
    peer_id: str,
    round_id: str,
    table_id: str,
    snapshot: str,
    context: str,
) -> bytes:
    """The 32-byte mask seed shared by ``my_id`` and ``peer_id`` for one round of one table.

    X25519 agreement gives both sides the same secret; BLAKE2b-256 keyed with it and
    personalised for this use derives the seed from a length-prefixed encoding of (round id,
    table, snapshot, smaller id, larger id, context). The result is symmetric for the pair
    and bound to the round, the table and the snapshot, so a new round gives unrelated
    masks. ``context`` binds everything else both sides agree on (the node passes the
    federation, catalogue version and digest, dimensions, roster version and participant
    set): a round id reused under another catalogue version or set gives unrelated masks
    too, so two uploads can never be subtracted to cancel their masks.

    Raises ValueError for a pair with itself or a low-order peer key (all-zero secret).
    """
    if my_id == peer_id:
        raise ValueError("a node has no mask with itself")
    try:
        shared = nacl.bindings.crypto_scalarmult(bytes(my_private), bytes(peer_public))
    except RuntimeError as exc:  # nacl.exceptions.RuntimeError subclasses it
        # libsodium refuses an all-zero result (peer key of small order).
        raise ValueError("X25519 agreement gave an all-zero secret (bad peer key)") from exc
    if not any(shared):
        raise ValueError("X25519 agreement gave an all-zero secret (bad peer key)")
    low, high = sorted((my_id, peer_id))
    fields = (round_id, table_id, snapshot, low, high, context)
    message = _KDF_TAG + b"".join(_field(f) for f in fields)
    return hashlib.blake2b(message, digest_size=SEED_BYTES, key=shared, person=_PERSON).digest()


def mask_stream(seed: bytes, length: int) -> list[int]:
    """``length`` uint64 values (little-endian) from libsodium's deterministic generator."""
    if len(seed) != SEED_BYTES:
        raise ValueError(f"seed must be {SEED_BYTES} bytes, got {len(seed)}")
    if length < 0:
        raise ValueError("length must be non-negative")
    if length == 0:
        return []
    raw = nacl.bindings.randombytes_buf_deterministic(8 * length, seed)
    return list(struct.unpack(f"<{length}Q", raw))


def _as_int(value: int) -> int:
    """Accept ints and integer-like scalars (numpy ints); refuse floats and strings."""
    try:
        return operator.index(value)
    except TypeError as exc:
        raise TypeError(f"upload values must be integers, got {type(value).__name__}") from exc


def masked(
    values: Sequence[int],
    my_private: PrivateKey,
    my_id: str,
    peers: Mapping[str, PublicKey],
    *,
    round_id: str,
    table_id: str,
    snapshot: str,
    context: str,
) -> list[int]:
    """This node's upload: ``values`` (signed int64) plus its pairwise masks, modulo 2⁶⁴.

    For every peer with a larger id the pair's mask is added, for every peer with a smaller id
    it is subtracted, so each mask appears once with each sign across the round and cancels
    only when *every* participant's upload is summed.

    Raises ValueError if ``my_id`` is among ``peers``, if there are fewer than
    ``MIN_PARTICIPANTS - 1`` peers (with none, the upload would be the plain vector), or if a
    value lies outside the int64 range (it would not decode back to itself).
    """
    if my_id in peers:
        raise ValueError("my_id must not be among the peers")
    seeds = {
        peer_id: pair_seed(
            my_private,
            peer_public,
            my_id=my_id,
            peer_id=peer_id,
            round_id=round_id,
            table_id=table_id,
            snapshot=snapshot,
            context=context,
        )
        for peer_id, peer_public in peers.items()
    }
    return masked_with_seeds(values, my_id, seeds)


def masked_with_seeds(values: Sequence[int], my_id: str, seeds: Mapping[str, bytes]) -> list[int]:
    """:func:`masked` with each peer's :func:`pair_seed` already agreed (same checks)."""
    if my_id in seeds:
        raise ValueError("my_id must not be among the peers")
    if len(seeds) < MIN_PARTICIPANTS - 1:
        raise ValueError(f"a round needs at least {MIN_PARTICIPANTS} participants")
    acc = [_as_int(v) for v in values]
    if any(not -_HALF <= v < _HALF for v in acc):
        raise ValueError("values must lie in the signed int64 range")
    n = len(acc)
    for peer_id, seed in seeds.items():
        stream = mask_stream(seed, n)
        if peer_id > my_id:
            acc = [a + m for a, m in zip(acc, stream, strict=True)]
        else:
            acc = [a - m for a, m in zip(acc, stream, strict=True)]
    return [a % MODULUS for a in acc]


def unmask_sum(uploads: Iterable[Sequence[int]]) -> list[int]:
    """The cell-wise sum of all uploads of a round modulo 2⁶⁴, decoded as signed int64.

    Only meaningful when every mask in ``uploads`` cancels (recovery.unmask removes the
    self masks and the masks of departments that dropped first); otherwise the result is
    uniformly random.

    Raises ValueError for no uploads, uploads of different lengths, or values outside
    [0, 2⁶⁴).
    """
    total: list[int] | None = None
    for upload in uploads:
        vals = [_as_int(v) for v in upload]
        if any(not 0 <= v < MODULUS for v in vals):
            raise ValueError("upload values must lie in [0, 2**64)")
        if total is None:
            total = vals
        elif len(vals) != len(total):
            raise ValueError("uploads have different lengths")
        else:
            total = [t + v for t, v in zip(total, vals, strict=True)]
    if total is None:
        raise ValueError("no uploads to sum")
    out = []
    for t in total:
        r = t % MODULUS
        out.append(r - MODULUS if r >= _HALF else r)
    return out
