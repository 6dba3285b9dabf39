"""The order-rate limit on an account's intake: past it, an order is refused before any broker call.

One token bucket per connector (so per account): ``per_minute`` tokens a minute, at most ``burst`` at once.
Each new order that is not a ``close`` takes one. An order that finds none is refused by the intake's own
validation refusal (journaled ``rejected``, a BrokerError of category ``validation``, retcode
TRADE_RETCODE_TOO_MANY_REQUESTS) with the limit named in words. It is journaled and published like any other
refusal, so it still counts in the agent's heartbeat order rate and in the supervisor's flood count (which
counts ``orders.submitted.*`` as they arrive): a flood is cut off at the broker at once and quarantined all
the same.

The bucket runs on the time the bus took each order (JetStream's publish timestamp), not the time the intake
reads it: a backlog read at once (an agent back from a kill -9, a slow start) was sent at the trader's own
pace and is not a flood; a flood is one however late it is read, and nobody but the bus sets that time.

Closes take no token and are never refused here: a flatten of many positions, or a trader closing by hand,
must always go out (the trading gate's rule too). A redelivered or recovered order is not counted again:
only a new admission asks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from mtrobot.broker.constants import TRADE_RETCODE_TOO_MANY_REQUESTS
from mtrobot.core.orders import OrderAction, OrderRequest
from mtrobot.settings import DEFAULT_ORDER_BURST, DEFAULT_ORDERS_PER_MIN, Settings

from .intake import Refusal


@dataclass(frozen=True, slots=True)
class OrderLimit:
    per_minute: float = DEFAULT_ORDERS_PER_MIN
    """Orders a minute, sustained; 0 or less: no limit."""
    burst: int = DEFAULT_ORDER_BURST
    """Orders at once (the bucket's size)."""

    @classmethod
    def of(cls, settings: Settings) -> OrderLimit:
        """``MTROBOT_ORDERS_PER_MIN`` and ``MTROBOT_ORDER_BURST``."""
        return cls(settings.orders_per_min, settings.order_burst)

    @property
    def off(self) -> bool:
        return self.per_minute <= 0

    def describe(self) -> str:
        return f"{self.per_minute:g} orders a minute, at most {self.burst} at once"


class IntakeLimit:
    """The bucket of one connector; the limit itself is passed at each ask (hot-reloadable options)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: float | None = None
        self._stamp = 0.0
        self.refused = 0

    def refuse(
        self, request: OrderRequest, limit: OrderLimit, published_at: float | None = None
    ) -> Refusal | None:
        """``None`` when ``request`` may go on (it took a token), else the refusal to record.

        ``published_at``: when the bus took the order (wall clock, like the default clock); unknown, now."""
        if limit.off or request.action is OrderAction.CLOSE:
            return None
        now = published_at if published_at is not None else self._clock()
        burst = float(max(1, limit.burst))
        if self._tokens is None:
            tokens = burst
        else:
            tokens = min(burst, self._tokens + max(0.0, now - self._stamp) * limit.per_minute / 60.0)
        self._stamp = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return None
        self._tokens = tokens
        self.refused += 1
        return Refusal(TRADE_RETCODE_TOO_MANY_REQUESTS, _message(limit))


def _message(limit: OrderLimit) -> str:
    return (
        f"Not sent: this account's orders came faster than its order-rate limit ({limit.describe()}). "
        "The order did not reach the broker; send it again in a moment. Closing positions is never limited."
    )
