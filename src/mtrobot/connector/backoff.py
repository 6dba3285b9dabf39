"""Exponential backoff with full jitter (the AWS architecture-blog formula), between a base and a cap."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``n`` (1-based): uniform in ``[base, min(cap, base * 2**(n-1))]``.

    Full jitter spreads the retries of many clients over the whole window, so a thousand agents that lost
    the same server do not come back in lock-step; the floor ``base`` keeps a tight loop impossible.
    """

    base: float = 0.5
    cap: float = 30.0

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError(f"backoff needs 0 < base <= cap, got base={self.base} cap={self.cap}")

    def ceiling(self, attempt: int) -> float:
        """The largest delay retry ``attempt`` may wait: the schedule a test can check against."""
        return float(min(self.cap, self.base * 2 ** max(0, min(attempt - 1, 62))))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        upper = self.ceiling(attempt)
        return (rng or random).uniform(self.base, upper) if upper > self.base else self.base
