"""Checking the account guards against the account's equity, at most once per ``interval_ms`` of market
time (see :mod:`mtrobot.robots.risk` for what the guards measure)."""

from __future__ import annotations

from mtrobot.logging import get_logger
from mtrobot.robots.market import MarketData, MarketDataError
from mtrobot.robots.risk import DAY_MS, Breach, EquityGuards

log = get_logger(__name__)


class EquityWatch:
    def __init__(self, market: MarketData, guards: EquityGuards, interval_ms: int) -> None:
        self.guards = guards
        self._market = market
        self._interval = interval_ms
        self._checked_ms: int | None = None
        self._cash: tuple[int, float, float] | None = None  # (day, balance seen, cash flows)

    async def check(self, now_ms: int) -> Breach | None:
        """A breach, or None (also when the guards are off, the check is not due or the read failed)."""
        if not self.guards.armed:
            return None
        if self._checked_ms is not None and now_ms - self._checked_ms < self._interval:
            return None
        self._checked_ms = now_ms
        try:
            account = await self._market.account()
            cash = await self._cash_flows(now_ms, account.balance)
        except MarketDataError as exc:
            log.warning("equity guards could not read the account", error=str(exc))
            return None
        return self.guards.observe(now_ms, account.equity, cash, account.currency)

    async def _cash_flows(self, now_ms: int, balance: float) -> float:
        """Deposits minus withdrawals of the server day, read again only when the balance moved."""
        day = now_ms // DAY_MS
        cached = self._cash
        if cached is not None and cached[0] == day and cached[1] == balance:
            return cached[2]
        flows = await self._market.cash_flows(day * 86_400)
        self._cash = (day, balance, flows)
        return flows
