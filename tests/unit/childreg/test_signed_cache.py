"""childreg.signed.VerifiedCache: each distinct signed file is verified once, failures never."""

from __future__ import annotations

import pytest

from childreg.errors import PermissionDenied
from childreg.signed import VerifiedCache


def test_each_file_is_verified_once_and_the_oldest_is_evicted() -> None:
    """Each file is verified once and the oldest is evicted."""
    calls: list[bytes] = []

    def verify(blob: bytes) -> str:
        calls.append(blob)
        return blob.decode()

    cache = VerifiedCache(verify, size=2)
    assert [cache.get(b) for b in (b"a", b"a", b"b", b"a")] == ["a", "a", "b", "a"]
    assert calls == [b"a", b"b"]
    cache.get(b"c")  # evicts b"b", the least recently used
    cache.get(b"b")
    assert calls == [b"a", b"b", b"c", b"b"]


def test_a_file_that_fails_is_not_cached() -> None:
    """A file that fails is not cached."""
    calls = 0

    def verify(blob: bytes) -> str:
        nonlocal calls
        calls += 1
        raise PermissionDenied("bad signature")

    cache: VerifiedCache[str] = VerifiedCache(verify)
    for _ in range(2):
        with pytest.raises(PermissionDenied):
            cache.get(b"x")
    assert calls == 2
