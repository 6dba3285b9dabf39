"""Years of price history before the simulator started: bars on every timeframe and ticks, on demand.

A script asks a terminal for 2022's daily bars or the last hour of ticks as readily as for the last bar, so
the history must be as deep as a broker's and cost nothing until it is read. It is a pure function of the
seed and the start: every trading day's price path is drawn from its own generators, seeded by (seed,
factor, day), so any day can be regenerated alone and gives the same prices every time.

The path has :data:`SUB` steps a minute (the history's ticks, every ten seconds). A step's log-return is
the symbol's volatility times a mix of two *currency factors* (base up, quote down) and its own noise:
EURUSD, GBPUSD and XAUUSD share the dollar factor and move together, USDCHF moves against them, EURJPY with
EURUSD and USDJPY. A per-day volatility regime varies the pace. The walk ends at the price the live feed
starts from, so history and live prices join without a gap.

Hourly bars of the whole history are computed once (one vectorised pass); timeframes above H1 aggregate
them, those below H1 regenerate the minutes of the last days they need. Like a terminal with "Max. bars in
chart" at :data:`MAX_BARS`, only the last ``MAX_BARS`` bars of each timeframe are kept.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mtrobot.broker import constants as mt5
from mtrobot.broker.arrays import RATES_DTYPE, TICKS_DTYPE, RatesArray, TicksArray
from mtrobot.sim.config import SymbolSpec

SUB = 4
"""History ticks per minute (open, two extremes, close)."""
HISTORY_VOLATILITY = 0.4
"""The live feed's volatility is tick noise; over months it would give EURUSD 19 % a year, this gives 8."""
BLOCK_DAYS = 16
"""Calendar days drawn together (the unit of regeneration)."""
STEPS_PER_DAY = 1440 * SUB
STEP_MS = 60_000 // SUB
DAY_S = 86_400
MAX_BARS = 100_000
MAX_TICKS = 100_000
"""Most history ticks one call returns (a frame of the wire protocol must hold them)."""
MIN_EXTENSION_DAYS = 64
"""Days computed at least when the history has to reach further back."""
FACTOR_WEIGHT = 0.8
"""Share of a step's variance that comes from the two currency factors."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def factors(spec: SymbolSpec) -> tuple[str, str]:
    """The two factors a symbol's price is the ratio of: base / quote currency for FX, the instrument
    itself against its quote currency for metals, indices and crypto."""
    if spec.calc_mode in (mt5.SYMBOL_CALC_MODE_FOREX, mt5.SYMBOL_CALC_MODE_FOREX_NO_LEVERAGE):
        return spec.currency_base, spec.currency_profit
    if spec.currency_base not in ("", spec.currency_profit):
        return spec.currency_base, spec.currency_profit
    return spec.name, spec.currency_profit


class DeepHistory:
    """The history of one symbol on one trade server, ending at ``end_ms`` (server time) at ``end_price``."""

    def __init__(self, spec: SymbolSpec, seed: int, end_ms: int, days: int, end_price: float) -> None:
        self.spec = spec
        self._seed = seed & 0xFFFFFFFF
        self._end_s = (end_ms - end_ms % 60_000) // 1000
        last_day = self._end_s // DAY_S
        weekends = spec.weekend_trading
        self.days: IntArray = np.array(
            [d for d in range(last_day - days, last_day + 1) if weekends or (d + 4) % 7 not in (0, 6)],
            dtype=np.int64,
        )
        self._end_price = end_price
        self._day_start_log: FloatArray = np.full(len(self.days), np.nan)
        self._known_from = len(self.days)
        """Index of the earliest day computed so far: the history is computed from the end backwards."""
        self._hour_parts: list[RatesArray] = []
        self._rates: dict[int, tuple[int, RatesArray]] = {}
        self._cache: dict[int, Block] = {}
        base, quote = factors(spec)
        self._keys = (zlib.crc32(base.encode()), zlib.crc32(quote.encode()), zlib.crc32(spec.name.encode()))

    # -- the price path --------------------------------------------------------------------------------
    def _block(self, block: int) -> Block:
        """The :data:`BLOCK_DAYS` calendar days of ``block``, one row a day: log-returns of every minute
        (zero after the end of the history) and how far each minute's high and low reach beyond its open
        and close (log). Drawn per block, so that any day can be regenerated alone."""
        cached = self._cache.get(block)
        if cached is not None:
            return cached
        shape = (BLOCK_DAYS, 1440)
        base_key, quote_key, own_key = self._keys
        zb = np.random.default_rng([self._seed, base_key, block]).standard_normal(shape)
        zq = np.random.default_rng([self._seed, quote_key, block]).standard_normal(shape)
        own = np.random.default_rng([self._seed, own_key, block, 1])
        regime = np.exp(0.3 * own.standard_normal(BLOCK_DAYS))[:, None]
        zi = own.standard_normal(shape)
        sigma = self.spec.volatility * HISTORY_VOLATILITY * math.sqrt(60) * regime
        steps: FloatArray = sigma * (
            math.sqrt(FACTOR_WEIGHT / 2) * (zb - zq) + math.sqrt(1 - FACTOR_WEIGHT) * zi
        )
        end_minute = (self._end_s - block * BLOCK_DAYS * DAY_S) // 60
        steps.reshape(-1)[max(0, min(end_minute, steps.size)) :] = 0.0
        wicks = np.abs(own.standard_normal((2, *shape))) * sigma * 0.5
        wicks.reshape(2, -1)[:, max(0, min(end_minute, steps.size)) :] = 0.0
        result = Block(steps, wicks[0], wicks[1])
        if len(self._cache) >= 2:
            self._cache.pop(next(iter(self._cache)))
        self._cache[block] = result
        return result

    def _rows(self, first: int, last: int) -> Iterator[tuple[int, Block]]:
        """(index of the first history day, its block rows and the following days') for the history days
        ``first`` .. ``last - 1``, a block at a time."""
        index = first
        while index < last:
            block = int(self.days[index]) // BLOCK_DAYS
            upto = min(last, int(np.searchsorted(self.days, (block + 1) * BLOCK_DAYS)))
            rows = self.days[index:upto] - block * BLOCK_DAYS
            drawn = self._block(block)
            yield index, Block(drawn.steps[rows], drawn.up[rows], drawn.down[rows])
            index = upto

    def _extend_to(self, index: int) -> None:
        """Compute the days from ``index`` on (hourly bars and each day's opening log price). The path is
        anchored at its end, so the recent days come first and older ones only when they are asked for;
        each extension at least doubles what is known, so reaching the start costs one pass in all."""
        known = self._known_from
        if index >= known:
            return
        first = max(0, min(index, known - max(MIN_EXTENSION_DAYS, len(self.days) - known)))
        count = known - first
        sums = np.empty(count)
        rel = np.empty((count, 24, 4))  # open, high, low, close of each hour, from the day start
        for at, rows in self._rows(first, known):
            n = len(rows.steps)
            ohlc = _minute_ohlc(np.zeros((n, 1)), rows).reshape(n, 24, 60, 4)
            part = rel[at - first : at - first + n]
            part[:, :, 0] = ohlc[:, :, 0, 0]
            part[:, :, 1] = ohlc[:, :, :, 1].max(axis=2)
            part[:, :, 2] = ohlc[:, :, :, 2].min(axis=2)
            part[:, :, 3] = ohlc[:, :, -1, 3]
            sums[at - first : at - first + n] = ohlc[:, -1, -1, 3]
        anchor = math.log(self._end_price) if known == len(self.days) else self._day_start_log[known]
        starts = anchor - np.cumsum(sums[::-1])[::-1]
        self._day_start_log[first:known] = starts
        days = self.days[first:known]
        times = (days[:, None] * DAY_S + np.arange(24)[None, :] * 3600).ravel()
        prices = np.exp(rel + starts[:, None, None]).reshape(-1, 4)
        keep = times < self._end_s
        self._hour_parts.insert(0, self._bars(times[keep], prices[keep], np.full(int(keep.sum()), 60 * SUB)))
        self._known_from = first

    def _index_of(self, since_s: int | None) -> int:
        """The first history day a request reaching back to ``since_s`` needs (all of them for None)."""
        return 0 if since_s is None else int(np.searchsorted(self.days, since_s // DAY_S))

    def _bars(self, times: IntArray, ohlc: FloatArray, volumes: npt.NDArray[np.int64]) -> RatesArray:
        out = np.zeros(len(times), dtype=RATES_DTYPE)
        out["time"] = times
        digits = self.spec.digits
        for column, name in enumerate(("open", "high", "low", "close")):
            out[name] = np.round(ohlc[:, column], digits)
        out["tick_volume"] = volumes
        out["spread"] = self.spec.spread_points
        return out

    def _minute_logs(self, first: int, last: int) -> Iterator[tuple[int, FloatArray]]:
        """(index of the first day, log open/high/low/close of every minute of it and the next days,
        shape (days, 1440, 4)) for the history days ``first`` .. ``last - 1``."""
        self._extend_to(first)
        for index, rows in self._rows(first, last):
            yield index, _minute_ohlc(self._day_start_log[index : index + len(rows.steps), None], rows)

    def _intraday(self, first: int, minutes: int) -> RatesArray:
        """Bars of ``minutes`` (a divisor of 60) of the days from the ``first``-th on."""
        per_day = 1440 // minutes
        parts = []
        for index, logs in self._minute_logs(first, len(self.days)):
            n = len(logs)
            grouped = logs.reshape(n, per_day, minutes, 4)
            ohlc = np.stack(
                (
                    grouped[:, :, 0, 0],
                    grouped[:, :, :, 1].max(axis=2),
                    grouped[:, :, :, 2].min(axis=2),
                    grouped[:, :, -1, 3],
                ),
                axis=2,
            )
            starts = (
                self.days[index : index + n, None] * DAY_S + np.arange(per_day)[None, :] * minutes * 60
            ).ravel()
            keep = starts < self._end_s
            kept_minutes = np.clip((self._end_s - starts[keep]) // 60, 0, minutes)
            parts.append(self._bars(starts[keep], np.exp(ohlc.reshape(-1, 4)[keep]), kept_minutes * SUB))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=RATES_DTYPE)

    # -- bars ------------------------------------------------------------------------------------------
    def rates(self, timeframe: int, since_s: int | None = None) -> RatesArray:
        """The bars of ``timeframe`` in the history, oldest first, at least back to ``since_s`` (all when
        None) and never more than the last :data:`MAX_BARS`."""
        needed = self._index_of(since_s)
        minutes = timeframe_minutes(timeframe)
        if minutes is not None and minutes < 60:
            needed = max(needed, len(self.days) - (MAX_BARS // (1440 // minutes) + 2))  # + a partial day
        cached = self._rates.get(timeframe)
        if cached is not None and cached[0] <= needed:
            return cached[1]
        if minutes is not None and minutes < 60:
            bars = self._intraday(needed, minutes)[-MAX_BARS:]
        else:
            self._extend_to(needed)
            hours = np.concatenate(self._hour_parts) if self._hour_parts else np.zeros(0, dtype=RATES_DTYPE)
            bars = aggregate(hours, timeframe)
            if not self.complete and minutes is None:  # the oldest week or month may have begun earlier
                bars = bars[1:]
            bars = bars[-MAX_BARS:]
            needed = self._known_from
        self._rates[timeframe] = (needed, bars)
        return bars

    @property
    def complete(self) -> bool:
        """Whether every day of the history has been computed."""
        return self._known_from == 0

    # -- ticks -----------------------------------------------------------------------------------------
    def ticks(self, start_ms: int, end_ms: int, limit: int = MAX_TICKS) -> TicksArray:
        """History ticks with ``start_ms <= time_msc <= end_ms`` (at most ``limit``, oldest first): four a
        minute, the open, the nearer extreme, the other extreme and the close, so the bars are the ticks'."""
        parts: list[TicksArray] = []
        total = 0
        first = int(np.searchsorted(self.days, start_ms // 1000 // DAY_S))
        last = int(np.searchsorted(self.days, end_ms // 1000 // DAY_S, side="right"))
        for index, logs in self._minute_logs(first, last):
            ticks = self._ticks_of(index, np.exp(logs))
            selected = ticks[(ticks["time_msc"] >= start_ms) & (ticks["time_msc"] <= end_ms)]
            parts.append(selected[: limit - total])
            total += len(parts[-1])
            if total >= limit:
                break
        return np.concatenate(parts) if parts else np.zeros(0, dtype=TICKS_DTYPE)

    def _ticks_of(self, index: int, ohlc: FloatArray) -> TicksArray:
        spec = self.spec
        o, h, low, c = (ohlc[:, :, i] for i in range(4))
        rising = c >= o
        bids = np.stack((o, np.where(rising, low, h), np.where(rising, h, low), c), axis=2).ravel()
        days = self.days[index : index + len(ohlc), None]
        times = (days * DAY_S * 1000 + np.arange(STEPS_PER_DAY)[None, :] * STEP_MS).ravel()
        keep = times < self._end_s * 1000
        rounded = np.round(bids[keep], spec.digits)
        out = np.zeros(int(keep.sum()), dtype=TICKS_DTYPE)
        out["time_msc"] = times[keep]
        out["time"] = times[keep] // 1000
        out["bid"] = rounded
        out["ask"] = np.round(rounded + spec.spread_points * spec.point, spec.digits)
        out["flags"] = mt5.TICK_FLAG_BID | mt5.TICK_FLAG_ASK
        return out


@dataclass(frozen=True)
class Block:
    steps: FloatArray
    up: FloatArray
    down: FloatArray


def _minute_ohlc(start: FloatArray, rows: Block) -> FloatArray:
    """Log open/high/low/close of every minute, shape (days, 1440, 4), from each day's log start."""
    closes = start + np.cumsum(rows.steps, axis=1)
    opens = np.concatenate((start, closes[:, :-1]), axis=1)
    highs = np.maximum(opens, closes) + rows.up
    lows = np.minimum(opens, closes) - rows.down
    return np.stack((opens, highs, lows, closes), axis=2)


def timeframe_minutes(timeframe: int) -> int | None:
    """Length of a timeframe in minutes (None for W1 and MN1, which follow the calendar)."""
    if timeframe in (mt5.TIMEFRAME_W1, mt5.TIMEFRAME_MN1):
        return None
    if timeframe & 0xC000 == 0x4000:
        return (timeframe & 0x3FFF) * 60
    return timeframe


def bucket_starts(times: IntArray, timeframe: int) -> IntArray:
    """The open time of the ``timeframe`` bar each time falls in (weeks start on Sunday, as in MT5)."""
    if timeframe == mt5.TIMEFRAME_W1:
        day = times - times % DAY_S
        return day - ((day // DAY_S + 4) % 7) * DAY_S
    if timeframe == mt5.TIMEFRAME_MN1:
        months = times.astype("datetime64[s]").astype("datetime64[M]")
        return months.astype("datetime64[s]").astype(np.int64)
    minutes = timeframe_minutes(timeframe)
    assert minutes is not None
    return times - times % (minutes * 60)


def aggregate(bars: RatesArray, timeframe: int) -> RatesArray:
    """Bars (oldest first) -> bars of ``timeframe``."""
    if len(bars) == 0:
        return bars
    keys = bucket_starts(bars["time"], timeframe)
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    ends = np.concatenate((starts[1:], [len(bars)])) - 1
    out = np.zeros(len(starts), dtype=RATES_DTYPE)
    out["time"] = keys[starts]
    out["open"] = bars["open"][starts]
    out["high"] = np.maximum.reduceat(bars["high"], starts)
    out["low"] = np.minimum.reduceat(bars["low"], starts)
    out["close"] = bars["close"][ends]
    out["tick_volume"] = np.add.reduceat(bars["tick_volume"], starts)
    out["spread"] = bars["spread"][ends]
    return out
