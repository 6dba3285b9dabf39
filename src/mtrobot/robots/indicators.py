"""Indicators over a robot's closed bars, computed from the window each time (no hidden state, so a
robot gives the same values after a restart as before it).

Wilder's RSI and ATR are recursive; they are computed over the last ``WILDER_SPAN × period`` bars (the
weight of anything older is below 0.1%), which keeps them cheap and independent of how much history a
robot keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from mtrobot.robots.api import Bar


def sma(values: Sequence[float], period: int) -> float | None:
    """Simple moving average of the last ``period`` values; None until there are enough."""
    if period <= 0 or len(values) < period:
        return None
    return sum(values[-period:]) / period


WILDER_SPAN = 10


def rsi(closes: Sequence[float], period: int) -> float | None:
    """Wilder's RSI of the last close (seeded with the simple average of the first ``period`` changes of
    the span, then Wilder's smoothing). None until there are ``period + 1`` closes."""
    values = rsi_last(closes, period, 1)
    return values[-1] if values else None


def rsi_last(closes: Sequence[float], period: int, count: int) -> list[float]:
    """The RSI of each of the last ``count`` closes, oldest first (fewer while history is short)."""
    if period <= 0 or len(closes) <= period:
        return []
    window = closes[-(WILDER_SPAN * period + count) :]
    changes = [b - a for a, b in pairwise(window)]
    gain = sum(c for c in changes[:period] if c > 0) / period
    loss = sum(-c for c in changes[:period] if c < 0) / period
    out = [_rsi(gain, loss)]
    for change in changes[period:]:
        gain = (gain * (period - 1) + max(change, 0.0)) / period
        loss = (loss * (period - 1) + max(-change, 0.0)) / period
        out.append(_rsi(gain, loss))
    return out[-count:]


def _rsi(gain: float, loss: float) -> float:
    if loss == 0:
        return 100.0 if gain > 0 else 50.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


def atr(bars: Sequence[Bar], period: int) -> float | None:
    """Wilder's average true range of the last bar; None until there are ``period + 1`` bars."""
    if period <= 0 or len(bars) <= period:
        return None
    bars = bars[-(WILDER_SPAN * period + 1) :]
    ranges = [max(bar.high, prev.close) - min(bar.low, prev.close) for prev, bar in pairwise(bars)]
    value = sum(ranges[:period]) / period
    for true_range in ranges[period:]:
        value = (value * (period - 1) + true_range) / period
    return value


def highest_high(bars: Sequence[Bar]) -> float:
    return max(bar.high for bar in bars)


def lowest_low(bars: Sequence[Bar]) -> float:
    return min(bar.low for bar in bars)
