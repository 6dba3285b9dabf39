"""Bars built from the session's prices: ticks in, one closed bar out whenever a tick starts a new bar.

Bars are of bid prices, as in MT5. A bar closes when the first tick of a later bar arrives (there is no
bar without a tick), so a robot's signal on a closed bar and the market order it asks for both happen at
that tick: the next bar's open. Bar open times are multiples of the timeframe in the trade server's
clock (D1 bars start at 00:00 server time).
"""

from __future__ import annotations

from typing import get_args

from mtrobot.broker import constants as mt5
from mtrobot.hub.schemas import Timeframe
from mtrobot.robots.api import Bar

TIMEFRAME_SECONDS: dict[str, int] = {
    "M1": 60,
    "M5": 300,
    "M15": 900,
    "M30": 1800,
    "H1": 3600,
    "H4": 14_400,
    "D1": 86_400,
}
TIMEFRAME_NAMES: tuple[str, ...] = get_args(Timeframe)
MT5_TIMEFRAMES: dict[str, int] = {
    "M1": mt5.TIMEFRAME_M1,
    "M5": mt5.TIMEFRAME_M5,
    "M15": mt5.TIMEFRAME_M15,
    "M30": mt5.TIMEFRAME_M30,
    "H1": mt5.TIMEFRAME_H1,
    "H4": mt5.TIMEFRAME_H4,
    "D1": mt5.TIMEFRAME_D1,
}


class BarBuilder:
    """The forming bar of one symbol and timeframe."""

    def __init__(self, timeframe: str, point: float) -> None:
        self.seconds = TIMEFRAME_SECONDS[timeframe]
        self._point = point
        self._start: int | None = None
        self._ohlc = [0.0, 0.0, 0.0, 0.0]
        self._ticks = 0
        self._spread = 0

    def seed(self, bar: Bar) -> None:
        """Continue a bar the terminal already started (warm-up after a start in the middle of a bar)."""
        self._start = bar.time
        self._ohlc = [bar.open, bar.high, bar.low, bar.close]
        self._ticks, self._spread = bar.tick_volume, bar.spread

    def update(self, time_msc: int, bid: float, ask: float) -> Bar | None:
        """Add one tick; returns the bar it closed, if it started a new one."""
        start = (time_msc // 1000) // self.seconds * self.seconds
        spread = round((ask - bid) / self._point) if self._point else 0
        if self._start == start:
            ohlc = self._ohlc
            if bid > ohlc[1]:
                ohlc[1] = bid
            if bid < ohlc[2]:
                ohlc[2] = bid
            ohlc[3] = bid
            self._ticks += 1
            self._spread = spread
            return None
        closed = self.forming() if self._start is not None and start > self._start else None
        if self._start is not None and start < self._start:
            return None  # a tick older than the forming bar (a late or repeated one): ignored
        self._start = start
        self._ohlc = [bid, bid, bid, bid]
        self._ticks, self._spread = 1, spread
        return closed

    def forming(self) -> Bar | None:
        if self._start is None:
            return None
        o, h, low, c = self._ohlc
        return Bar(self._start, o, h, low, c, self._ticks, self._spread)
