"""Per-caller token buckets: a burst is allowed, then refused, refilled over time, per caller."""

from __future__ import annotations

import pytest

from childreg.errors import ResourceExhausted
from childreg.ratelimit import RateLimit, RateLimiter


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refusal_then_refill() -> None:
    """A caller gets `burst` calls at once, is refused the next, and recovers at `rate`."""
    clock = Clock()
    limiter = RateLimiter(RateLimit(rate=2.0, burst=3), clock)
    for _ in range(3):
        limiter.take("a")
    with pytest.raises(ResourceExhausted):
        limiter.take("a")
    clock.now += 0.5  # one token back at 2 per second
    limiter.take("a")
    with pytest.raises(ResourceExhausted):
        limiter.take("a")


def test_callers_do_not_share_a_bucket() -> None:
    """One caller over its limit does not slow another."""
    limiter = RateLimiter(RateLimit(rate=1.0, burst=1), Clock())
    limiter.take("noisy")
    with pytest.raises(ResourceExhausted):
        limiter.take("noisy")
    limiter.take("quiet")
