"""The tick pump of a live robot host: new ticks of every portfolio symbol, read through the market-data
port every ``interval`` seconds and handed to the host in order. A failed read is logged once per outage
and retried at the next round; it never ends the pump."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from mtrobot.broker.structures import Tick
from mtrobot.logging import get_logger
from mtrobot.robots.market import MarketData, MarketDataError

log = get_logger(__name__)

Feed = Callable[[str, Sequence[Tick]], Awaitable[None]]


class TickPump:
    def __init__(
        self,
        market: MarketData,
        feed: Feed,
        symbols: Callable[[], list[str]],
        first_ms: Callable[[str], int],
        interval_s: float,
        name: str,
    ) -> None:
        self._market = market
        self._feed = feed
        self._symbols = symbols
        self._first_ms = first_ms
        self._interval = interval_s
        self._name = name
        self._since: dict[str, int] = {}
        self._failing: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            for symbol in self._symbols():
                await self._read(symbol)
            await asyncio.sleep(self._interval)

    async def _read(self, symbol: str) -> None:
        if symbol not in self._since:
            self._since[symbol] = self._first_ms(symbol)
        try:
            ticks = await self._market.ticks_since(symbol, self._since[symbol])
        except MarketDataError as exc:
            if symbol not in self._failing:
                self._failing.add(symbol)
                log.warning("no ticks from the terminal", symbol=symbol, error=str(exc))
            return
        self._failing.discard(symbol)
        if not ticks:
            return
        self._since[symbol] = ticks[-1].time_msc
        try:
            await self._feed(symbol, ticks)
        except Exception as exc:  # never let one bad batch end the pump
            log.error("robot host feed failed", symbol=symbol, error=repr(exc), exc_info=exc)
