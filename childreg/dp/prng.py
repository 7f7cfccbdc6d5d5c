"""The deterministic, cryptographic bit source behind every noise draw.

A node's noise for one (catalogue version, table, snapshot, cell) must be the same every
time it is asked for, or repeating a query and averaging the answers would wash the noise
out; and it must be unpredictable to anyone without the node's secret. So the seed of a
cell is a keyed PRF (BLAKE2b-256 keyed with the node's 32-byte secret) of an unambiguous,
length-prefixed encoding of those values, and the bits come from libsodium's deterministic
generator (``randombytes_buf_deterministic``, ChaCha20) in blocks whose seeds are derived
from the cell seed and a block counter.

The exact discrete Gaussian sampler (Canonne, Kamath, Steinke 2020, "The Discrete Gaussian
for Differential Privacy", Algorithms 1-3) consumes these bits through :class:`BitSource`:
only uniform integers ``below(n)`` (exact rejection sampling, no modulo bias) and exact
rational Bernoulli trials. Nothing here uses ``random``, floats or numpy.

The byte layout (domain strings, block size, bit order) is a compatibility contract: a
change gives every cell fresh noise, which would let someone average the old and the new
answers. The known-answer tests in ``tests/unit/test_dp_sampler.py`` pin it.
"""

from __future__ import annotations

import hashlib
import os
from fractions import Fraction
from typing import Protocol, runtime_checkable

from nacl.bindings import randombytes_buf_deterministic

__all__ = [
    "SECRET_BYTES",
    "SEED_BYTES",
    "BitSource",
    "DeterministicBits",
    "SystemBits",
    "noise_seed",
]

#: Length of a node's noise secret and of every seed, in bytes.
SECRET_BYTES = 32
SEED_BYTES = 32

#: BLAKE2b personalisation strings (at most 16 bytes each), one per purpose.
_PERSON_SEED = b"childreg-noise1"
_PERSON_BLOCK = b"childreg-block1"

#: Bytes produced per generator block (one call to libsodium).
_BLOCK_BYTES = 64

#: Field tags of the seed encoding; part of the compatibility contract.
_FORMAT = b"childreg/noise-seed/v1"


def _field(data: bytes) -> bytes:
    """``data`` preceded by its length as 8 bytes big-endian: no two splits collide."""
    return len(data).to_bytes(8, "big") + data


def _nonneg_int(name: str, value: int) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int")
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    if value >= 1 << 64:
        raise ValueError(f"{name} must be below 2**64")
    return value.to_bytes(8, "big")


def _text(name: str, value: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a str")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value.encode("utf-8")


def noise_seed(
    secret: bytes, *, catalogue_version: int, table_id: str, snapshot: str, cell: int
) -> bytes:
    """The 32-byte seed of one cell's noise: BLAKE2b-256 keyed with the node's secret.

    The message is a version tag followed by each field with an 8-byte length prefix, so
    ("ab", "c") and ("a", "bc") give different seeds. Raises ValueError on a secret that
    is not exactly 32 bytes, a negative version or cell, or an empty table or snapshot.
    """
    if not isinstance(secret, bytes | bytearray) or len(secret) != SECRET_BYTES:
        raise ValueError(f"secret must be exactly {SECRET_BYTES} bytes")
    message = b"".join(
        (
            _field(_FORMAT),
            _field(_nonneg_int("catalogue_version", catalogue_version)),
            _field(_text("table_id", table_id)),
            _field(_text("snapshot", snapshot)),
            _field(_nonneg_int("cell", cell)),
        )
    )
    return hashlib.blake2b(
        message, digest_size=SEED_BYTES, key=bytes(secret), person=_PERSON_SEED
    ).digest()


@runtime_checkable
class BitSource(Protocol):
    """What the exact sampler needs from a source of randomness."""

    def below(self, n: int) -> int:
        """A uniform integer in [0, n), n ≥ 1."""
        ...

    def bernoulli(self, p: Fraction) -> bool:
        """True with probability exactly p, 0 ≤ p ≤ 1."""
        ...


class _PooledBits:
    """Uniform integers from a stream of bytes, buffered as one Python int.

    Bits are taken from the low end of the pool; a new block is appended above the bits
    still unused (little-endian). Subclasses supply the blocks.
    """

    __slots__ = ("_nbits", "_pool")

    def __init__(self) -> None:
        self._pool = 0
        self._nbits = 0

    def _next_block(self) -> bytes:
        raise NotImplementedError

    def randbits(self, k: int) -> int:
        """A uniform integer in [0, 2**k)."""
        if k < 0:
            raise ValueError("k must not be negative")
        while self._nbits < k:
            block = self._next_block()
            self._pool |= int.from_bytes(block, "little") << self._nbits
            self._nbits += 8 * len(block)
        value = self._pool & ((1 << k) - 1)
        self._pool >>= k
        self._nbits -= k
        return value

    def below(self, n: int) -> int:
        """A uniform integer in [0, n): rejection on (n−1).bit_length() bits, no modulo bias."""
        if n < 1:
            raise ValueError("n must be at least 1")
        k = (n - 1).bit_length()
        if k == 0:
            return 0
        mask = (1 << k) - 1
        while True:
            # randbits inlined: this is the innermost loop of the sampler.
            if self._nbits < k:
                block = self._next_block()
                self._pool |= int.from_bytes(block, "little") << self._nbits
                self._nbits += 8 * len(block)
                continue
            value = self._pool & mask
            self._pool >>= k
            self._nbits -= k
            if value < n:
                return value

    def bernoulli(self, p: Fraction) -> bool:
        """True with probability exactly p (rational, 0 ≤ p ≤ 1): below(denominator) < numerator."""
        if isinstance(p, bool) or not isinstance(p, Fraction | int):
            raise ValueError("p must be a Fraction or an int (floats are inexact)")
        p = Fraction(p)
        if not 0 <= p <= 1:
            raise ValueError("p must lie in [0, 1]")
        if p.numerator == 0:
            return False
        if p.numerator == p.denominator:
            return True
        return self.below(p.denominator) < p.numerator


class DeterministicBits(_PooledBits):
    """An endless, reproducible stream of uniform bits from a 32-byte seed.

    Block i (i = 0, 1, …) is ``randombytes_buf_deterministic(64, BLAKE2b-256(key=seed,
    message=i as 8 bytes big-endian, person="childreg-block1"))``.
    """

    __slots__ = ("_counter", "_seed")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
            raise ValueError(f"seed must be exactly {SEED_BYTES} bytes")
        super().__init__()
        self._seed = bytes(seed)
        self._counter = 0

    def _next_block(self) -> bytes:
        block_seed = hashlib.blake2b(
            self._counter.to_bytes(8, "big"),
            digest_size=SEED_BYTES,
            key=self._seed,
            person=_PERSON_BLOCK,
        ).digest()
        self._counter += 1
        return randombytes_buf_deterministic(_BLOCK_BYTES, block_seed)


class SystemBits(_PooledBits):
    """Non-reproducible bits from the operating system (``os.urandom``), for tests and tools."""

    __slots__ = ()

    def _next_block(self) -> bytes:
        return os.urandom(_BLOCK_BYTES)
