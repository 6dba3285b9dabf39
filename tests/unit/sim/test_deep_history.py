"""The deep history: deterministic, consistent across timeframes and with its ticks, joined to the live
start, closed at weekends for FX, and correlated where currencies are shared."""

from __future__ import annotations

import datetime as dt

import numpy as np

from mtrobot.broker import constants as mt5
from mtrobot.sim.config import SymbolSpec, default_config
from mtrobot.sim.deep_history import DeepHistory, aggregate

SPECS = {s.name: s for s in default_config().servers[0].symbols}
END_MS = int(dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)


def history(name: str, seed: int = 42, days: int = 120) -> DeepHistory:
    spec: SymbolSpec = SPECS[name]
    return DeepHistory(spec, seed, END_MS, days, spec.start_price)


def test_the_same_seed_gives_the_same_history_and_another_seed_another() -> None:
    a, b, c = history("EURUSD"), history("EURUSD"), history("EURUSD", seed=7)
    assert np.array_equal(a.rates(mt5.TIMEFRAME_H1), b.rates(mt5.TIMEFRAME_H1))
    assert not np.array_equal(a.rates(mt5.TIMEFRAME_H1)["close"], c.rates(mt5.TIMEFRAME_H1)["close"])


def test_the_history_ends_at_the_live_start_price_just_before_the_start() -> None:
    minutes = history("EURUSD").rates(mt5.TIMEFRAME_M1)
    assert minutes["close"][-1] == SPECS["EURUSD"].start_price
    assert minutes["time"][-1] == END_MS // 1000 - 60


def test_higher_timeframes_are_the_aggregation_of_the_minutes_and_the_minutes_of_the_ticks() -> None:
    deep = history("GBPUSD", days=20)
    minutes, hours = deep.rates(mt5.TIMEFRAME_M1), deep.rates(mt5.TIMEFRAME_H1)
    assert np.array_equal(aggregate(minutes, mt5.TIMEFRAME_H1), hours)  # 20 days: all minutes kept
    ticks = deep.ticks(END_MS - 3_600_000, END_MS)
    assert len(ticks) == 240 and np.all(np.diff(ticks["time_msc"]) > 0)
    last_hour = minutes[minutes["time"] >= END_MS // 1000 - 3600]
    for bar in last_hour:
        inside = ticks[(ticks["time"] >= bar["time"]) & (ticks["time"] < bar["time"] + 60)]
        assert (inside["bid"][0], inside["bid"].max(), inside["bid"].min(), inside["bid"][-1]) == (
            bar["open"], bar["high"], bar["low"], bar["close"],
        )  # fmt: skip


def test_fx_has_no_weekend_bars_and_crypto_has() -> None:
    weekdays = lambda bars: set(((bars["time"] // 86_400) + 4) % 7)  # noqa: E731  (0 = Sunday)
    assert weekdays(history("EURUSD").rates(mt5.TIMEFRAME_D1)) == {1, 2, 3, 4, 5}
    assert weekdays(history("BTCUSD").rates(mt5.TIMEFRAME_D1)) == {0, 1, 2, 3, 4, 5, 6}


def test_symbols_sharing_a_currency_move_together() -> None:
    def returns(name: str) -> np.ndarray:
        return np.diff(np.log(history(name).rates(mt5.TIMEFRAME_H1)["close"]))

    eurusd = returns("EURUSD")
    assert np.corrcoef(eurusd, returns("GBPUSD"))[0, 1] > 0.2  # both against the dollar
    assert np.corrcoef(eurusd, returns("USDCHF"))[0, 1] < -0.2  # the dollar on the other side
    assert np.corrcoef(eurusd, returns("EURJPY"))[0, 1] > 0.2  # the euro on the same side
    assert abs(np.corrcoef(returns("NZDUSD"), returns("GER40"))[0, 1]) < 0.15  # nothing shared
