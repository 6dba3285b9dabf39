"""A circuit breaker on the broker connection.

Closed, every failed login waits the session's full-jitter backoff. After ``threshold`` failures in a row the
breaker opens: no login at all for ``open_s`` (doubling at each failed trial, up to ``cap_s``; by default half
and all of the reconnect backoff's cap), so a broken
server or a wrong setup is not hammered; orders are held meanwhile (the executor waits for the session and
refuses an order only once it is too old to send safely). When the interval has passed the breaker is
half-open: one login is tried; success closes it, failure opens it again for longer. :meth:`describe` says it
in words for the heartbeat and the operator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """``open_s`` and ``cap_s`` unset: half and all of the session's reconnect backoff cap (30 s and 60 s by
    default), so a breaker never holds longer than the backoff the operator configured."""

    threshold: int = 5
    open_s: float | None = None
    cap_s: float | None = None

    def __post_init__(self) -> None:
        if self.threshold < 1 or (self.open_s is not None and self.open_s <= 0):
            raise ValueError("a breaker needs threshold >= 1 and open_s > 0")

    def resolved(self, backoff_cap: float) -> tuple[float, float]:
        open_s = self.open_s if self.open_s is not None else backoff_cap / 2
        return open_s, max(open_s, self.cap_s if self.cap_s is not None else backoff_cap)


class CircuitBreaker:
    def __init__(
        self, policy: BreakerPolicy, backoff_cap: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy
        self.open_s, self.cap_s = policy.resolved(backoff_cap)
        self._clock = clock
        self.failures = 0
        """Failures in a row since the last success."""
        self.opened = 0
        """How many times it opened since the last success (the interval doubles with each)."""
        self._until = 0.0
        self.last_error = ""

    @property
    def state(self) -> BreakerState:
        if self.failures < self.policy.threshold:
            return BreakerState.CLOSED
        return BreakerState.OPEN if self._clock() < self._until else BreakerState.HALF_OPEN

    def wait_s(self) -> float:
        """Seconds before a login may be tried (0 when closed or half-open)."""
        return max(0.0, self._until - self._clock()) if self.failures >= self.policy.threshold else 0.0

    def failure(self, error: str = "") -> None:
        self.failures += 1
        self.last_error = error
        if self.failures >= self.policy.threshold:
            interval = min(self.cap_s, self.open_s * 2 ** min(self.opened, 30))
            self.opened += 1
            self._until = self._clock() + interval

    def success(self) -> None:
        self.failures, self.opened, self._until, self.last_error = 0, 0, 0.0, ""

    def describe(self) -> str:
        state = self.state
        if state is BreakerState.CLOSED:
            return ""
        why = f" ({self.last_error})" if self.last_error else ""
        if state is BreakerState.OPEN:
            return (f"the broker connection failed {self.failures} times in a row{why}: orders are held, "
                    f"next try in {self.wait_s():.0f} s")  # fmt: skip
        return f"the broker connection failed {self.failures} times in a row{why}: trying again now"
