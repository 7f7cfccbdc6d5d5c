"""Per-caller rate limits: a token bucket for each verified identity.

One noisy or compromised caller runs out of tokens and gets RESOURCE_EXHAUSTED; other
callers are unaffected. Buckets refill continuously at ``rate`` tokens per second up to
``burst``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from childreg.errors import ResourceExhausted


@dataclass(frozen=True)
class RateLimit:
    """Calls per second per caller, and how many may come at once."""

    rate: float = 50.0
    burst: int = 100


class RateLimiter:
    """Token buckets keyed by caller identity."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, last time)
        self._lock = threading.Lock()

    def take(self, caller: str) -> None:
        """Spend one token of ``caller``'s bucket, or raise ResourceExhausted."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(caller, (float(self._limit.burst), now))
            tokens = min(float(self._limit.burst), tokens + (now - last) * self._limit.rate)
            if tokens < 1.0:
                self._buckets[caller] = (tokens, now)
                raise ResourceExhausted(
                    f"rate limit: at most {self._limit.rate:g} calls per second per caller"
                )
            self._buckets[caller] = (tokens - 1.0, now)
