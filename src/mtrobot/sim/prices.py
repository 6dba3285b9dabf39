"""Price feeds: a seeded synthetic model and replay of MT5 export files, with tick and M1-bar storage.

Feeds are pulled forward by the trade server (``advance_to``) on its clock, so a run on a virtual clock is
reproducible: every random draw comes from a per-symbol generator seeded from the broker seed and the
symbol name, and ticks fall on a fixed grid of server times.

Synthetic model: a log-normal random walk with Markov volatility regimes, news bursts (volatility and
spread up for a few minutes), spread widening around the daily rollover, no ticks while the market is
closed and a gap when it reopens after the weekend.
"""

from __future__ import annotations

import math
import random
import zlib
from collections import deque
from collections.abc import Iterable

from mtrobot.broker import constants as mt5
from mtrobot.broker.arrays import RatesArray
from mtrobot.broker.structures import Tick
from mtrobot.sim.config import SymbolSpec
from mtrobot.sim.deep_history import FACTOR_WEIGHT, DeepHistory, factors
from mtrobot.sim.schedule import MINUTE_MS, Schedule, minute_of_day, weekday

MAX_TICKS = 20_000
MAX_BARS = 30_000
COARSE_AFTER_MS = 15 * 60_000
"""Beyond this much catch-up, the walk steps once a minute instead of once a tick (long virtual jumps);
those sparser ticks still act on orders and positions."""

Bar = list[float]
"""M1 bar: [open, high, low, close, tick_volume, spread]."""

_REGIMES = (0.6, 1.0, 2.2)


def symbol_seed(seed: int, name: str, salt: str = "") -> int:
    return (seed * 1_000_003) ^ zlib.crc32(f"{name}/{salt}".encode())


class SymbolFeed:
    """Ticks and M1 bars of one symbol; subclasses decide where prices come from."""

    def __init__(self, spec: SymbolSpec) -> None:
        self.spec = spec
        self.ticks: deque[Tick] = deque(maxlen=MAX_TICKS)
        self.bars: dict[int, Bar] = {}
        """M1 bars by open time (server epoch seconds), oldest first."""
        self.frozen = False
        self.first_bid: float | None = None
        self.history_rates: dict[int, RatesArray] = {}
        """Aggregations of the (immutable) generated history, per timeframe (see views.rates)."""
        self.deep: DeepHistory | None = None
        """Years of bars and ticks before the start, when the broker is configured with history_days."""

    @property
    def last(self) -> Tick | None:
        return self.ticks[-1] if self.ticks else None

    def advance_to(self, server_ms: int, schedule: Schedule) -> list[Tick]:
        raise NotImplementedError

    def history(self) -> dict[int, Bar]:
        """Bars before the feed started (generated on first use)."""
        return {}

    def record(self, tick: Tick) -> Tick:
        if self.first_bid is None:
            self.first_bid = tick.bid
        self.ticks.append(tick)
        minute = tick.time - tick.time % 60
        spread = round((tick.ask - tick.bid) / self.spec.point)
        bar = self.bars.get(minute)
        if bar is None:
            self.bars[minute] = [tick.bid, tick.bid, tick.bid, tick.bid, 1, spread]
            if len(self.bars) > MAX_BARS:
                del self.bars[next(iter(self.bars))]
        else:
            bar[1] = max(bar[1], tick.bid)
            bar[2] = min(bar[2], tick.bid)
            bar[3] = tick.bid
            bar[4] += 1
            bar[5] = spread
        return tick

    def make_tick(self, server_ms: int, bid: float, ask: float) -> Tick:
        digits = self.spec.digits
        bid, ask = round(bid, digits), round(max(ask, bid), digits)
        last = self.last
        flags = 0
        if last is None or last.bid != bid:
            flags |= mt5.TICK_FLAG_BID
        if last is None or last.ask != ask:
            flags |= mt5.TICK_FLAG_ASK
        return Tick(server_ms // 1000, bid, ask, 0.0, 0, server_ms, flags or mt5.TICK_FLAG_BID, 0.0)

    def force_quote(self, server_ms: int, bid: float, ask: float | None) -> Tick:
        """An injected quote (admin): recorded like any other and followed by the model from there."""
        if ask is None:
            last = self.last
            spread = (last.ask - last.bid) if last else self.spec.spread_points * self.spec.point
            ask = bid + spread
        return self.record(self.make_tick(server_ms, bid, ask))


class SyntheticFeed(SymbolFeed):
    def __init__(
        self,
        spec: SymbolSpec,
        seed: int,
        start_ms: int,
        interval_ms: int,
        history_minutes: int,
        *,
        history_days: int = 0,
        correlated: bool = False,
    ) -> None:
        super().__init__(spec)
        self._factors = factors(spec) if correlated else None
        if history_days:
            self.deep = DeepHistory(spec, seed, start_ms, history_days, spec.start_price)
        self._rng = random.Random(symbol_seed(seed, spec.name))
        self._seed = seed
        self._interval = interval_ms
        self._next_ms = start_ms - start_ms % interval_ms + interval_ms
        self._start_ms = start_ms
        self._log_price = math.log(spec.start_price)
        self._regime = 1
        self._news_until_ms = 0
        self._closed_since_ms: int | None = None
        self._minute = start_ms // MINUTE_MS
        self._history_minutes = history_minutes
        self._history: dict[int, Bar] | None = None

    def force_quote(self, server_ms: int, bid: float, ask: float | None) -> Tick:
        self._log_price = math.log(max(bid, self.spec.point))
        return super().force_quote(server_ms, bid, ask)

    def advance_to(self, server_ms: int, schedule: Schedule) -> list[Tick]:
        out: list[Tick] = []
        if self.frozen:
            self._next_ms = max(self._next_ms, server_ms - server_ms % self._interval + self._interval)
            return out
        coarse_until = server_ms - COARSE_AFTER_MS
        while self._next_ms <= server_ms:
            t = self._next_ms
            step = MINUTE_MS if t < coarse_until else self._interval
            self._next_ms = t + step
            if not schedule.is_open(t, weekends=self.spec.weekend_trading):
                if self._closed_since_ms is None:
                    self._closed_since_ms = t
                continue
            out.append(self._step(t, step))
        return out

    def _step(self, t: int, step_ms: int) -> Tick:
        rng = self._rng
        minute = t // MINUTE_MS
        while self._minute < minute:  # regime and news draws once per minute, whatever the tick grid
            self._minute += 1
            if rng.random() < 0.01:
                self._regime = rng.randrange(len(_REGIMES))
            if self._news_until_ms <= t and rng.random() < 0.003:
                self._news_until_ms = t + rng.randint(2, 10) * MINUTE_MS
        news = self._news_until_ms > t
        sigma = self.spec.volatility * _REGIMES[self._regime] * (4.0 if news else 1.0)
        shock = rng.gauss(0.0, 1.0)
        if self._factors is not None:  # the currencies' shocks of this instant, shared by every symbol
            base, quote = (factor_shock(self._seed, name, t) for name in self._factors)
            shock = math.sqrt(FACTOR_WEIGHT / 2) * (base - quote) + math.sqrt(1 - FACTOR_WEIGHT) * shock
        drift = shock * sigma * math.sqrt(step_ms / 1000)
        if self._closed_since_ms is not None:
            closed_s = (t - self._closed_since_ms) / 1000
            if closed_s > 3600:  # reopening after the weekend (or a long break): a gap
                drift += rng.gauss(0.0, self.spec.volatility * math.sqrt(closed_s) * 0.3)
            self._closed_since_ms = None
        self._log_price += drift
        bid = math.exp(self._log_price)
        spread = self.spec.spread_points * (1.0 + 0.5 * rng.random())
        if news:
            spread *= 3.0
        if _near_rollover(t):
            spread *= 3.0
        return self.record(self.make_tick(t, bid, bid + round(spread) * self.spec.point))

    def history(self) -> dict[int, Bar]:
        """M1 bars before the start, by a backward walk from the start price (same seed, own stream)."""
        if self._history is None:
            self._history = self._generate_history()
        return self._history

    def _generate_history(self) -> dict[int, Bar]:
        rng = random.Random(symbol_seed(self._seed, self.spec.name, "history"))
        spec = self.spec
        schedule_free: dict[int, Bar] = {}
        price = self.first_bid or spec.start_price
        minute_ms = self._start_ms - self._start_ms % MINUTE_MS
        sigma = spec.volatility * math.sqrt(15.0)
        count = 0
        while count < self._history_minutes:
            minute_ms -= MINUTE_MS
            if _weekend_minute(minute_ms):
                continue
            path = [price]
            for _ in range(4):
                path.append(path[-1] * math.exp(rng.gauss(0.0, sigma)))
            close, open_ = price, path[-1]
            bar = [
                round(open_, spec.digits),
                round(max(path), spec.digits),
                round(min(path), spec.digits),
                round(close, spec.digits),
                60 + rng.randrange(60),
                spec.spread_points,
            ]
            schedule_free[minute_ms // 1000] = bar
            price = open_
            count += 1
        return dict(sorted(schedule_free.items()))


def factor_shock(seed: int, factor: str, server_ms: int) -> float:
    """A standard normal draw of one currency factor at one instant: the same for every symbol quoting
    that currency on the server (ticks fall on one grid of server times)."""
    return random.Random(symbol_seed(seed, factor, f"factor/{server_ms}")).gauss(0.0, 1.0)


def _near_rollover(server_ms: int) -> bool:
    minute = minute_of_day(server_ms)
    return minute >= 23 * 60 + 50 or minute < 15


def _weekend_minute(server_ms: int) -> bool:
    return weekday(server_ms) in (0, 6)


class ReplayFeed(SymbolFeed):
    """Replays ticks (``bid``/``ask`` pairs at server times) loaded from an MT5 export file."""

    def __init__(self, spec: SymbolSpec, ticks: Iterable[tuple[int, float, float]]) -> None:
        super().__init__(spec)
        self._pending = deque(sorted(ticks))

    def advance_to(self, server_ms: int, schedule: Schedule) -> list[Tick]:
        out: list[Tick] = []
        while self._pending and self._pending[0][0] <= server_ms:
            t, bid, ask = self._pending.popleft()
            if not self.frozen:
                out.append(self.record(self.make_tick(t, bid, ask)))
        return out
