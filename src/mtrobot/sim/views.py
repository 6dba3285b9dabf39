"""What a terminal shows: MT5 structures and numpy arrays built from the trade server's state."""

from __future__ import annotations

import calendar
import datetime as dt
import fnmatch
from collections.abc import Iterable

import numpy as np

from mtrobot.broker import constants as mt5
from mtrobot.broker.arrays import RATES_DTYPE, TICKS_DTYPE, RatesArray, TicksArray
from mtrobot.broker.structures import AccountInfo, SymbolInfo, TerminalInfo, Tick
from mtrobot.sim.config import SymbolSpec
from mtrobot.sim.prices import Bar
from mtrobot.sim.server import TradeServer
from mtrobot.sim.state import Account

TERMINAL_VERSION = (500, 5120, "01 Oct 2026")
MAX_BARS = 100_000


def matches_group(name: str, group: str) -> bool:
    """MT5 group filter: comma-separated masks with ``*``, ``!`` excludes, applied left to right."""
    selected = False
    for raw in group.split(","):
        mask = raw.strip()
        if not mask:
            continue
        exclude = mask.startswith("!")
        pattern = mask[1:] if exclude else mask
        if fnmatch.fnmatchcase(name.upper(), pattern.upper()):
            selected = not exclude
    return selected


def account_info(server: TradeServer, account: Account, investor: bool) -> AccountInfo:
    config = server.config
    fig = server.figures(account)
    return AccountInfo(
        account.login,
        config.trade_mode,
        account.leverage,
        config.limit_orders,
        config.margin_so_mode,
        account.trade_allowed and not investor,
        account.trade_expert,
        config.margin_mode,
        account.currency_digits,
        config.fifo_close and not server.netting(),
        account.balance,
        account.credit,
        fig.profit,
        fig.equity,
        fig.margin,
        fig.margin_free,
        fig.margin_level,
        config.margin_call,
        config.margin_stopout,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        account.name,
        server.name,
        account.currency,
        config.company,
    )


def terminal_info(
    server: TradeServer, *, algo_trading: bool, tradeapi_disabled: bool, ping_us: int
) -> TerminalInfo:
    return TerminalInfo(
        False,
        False,
        True,
        False,
        algo_trading,
        tradeapi_disabled,
        False,
        False,
        False,
        False,
        TERMINAL_VERSION[1],
        MAX_BARS,
        0,
        ping_us,
        0.0,
        0.0,
        server.config.company,
        "MetaTrader 5 (mtrobot simulator)",
        "English",
        "/sim/MetaTrader 5",
        "/sim/MetaTrader 5/data",
        "/sim/MetaTrader 5/common",
    )


def _day_range(server: TradeServer, symbol: str, now_s: int) -> tuple[float, float, float]:
    """(high, low, open) of the server day so far, from the M1 bars."""
    start = now_s - now_s % 86400
    high, low, open_ = 0.0, 0.0, 0.0
    for minute, bar in reversed(server.feeds[symbol].bars.items()):
        if minute < start:
            break
        high = max(high, bar[1])
        low = bar[2] if low == 0.0 else min(low, bar[2])
        open_ = bar[0]
    return high, low, open_


def symbol_info(server: TradeServer, spec: SymbolSpec, selected: bool, currency: str) -> SymbolInfo:
    tick = server.quote(spec.name) or Tick(0, 0.0, 0.0, 0.0, 0, 0, 0, 0.0)
    point = spec.point
    spread = round((tick.ask - tick.bid) / point) if tick.bid else 0
    high, low, day_open = _day_range(server, spec.name, tick.time)
    change = round((tick.bid - day_open) / day_open * 100, 2) if day_open else 0.0
    tick_value = server.money.tick_value(spec, currency)
    hedged = spec.margin_hedged if spec.margin_hedged is not None else spec.contract_size
    ints = (
        False,
        mt5.SYMBOL_CHART_MODE_BID,
        selected,
        selected,
        0,
        0,
        0,
        0,
        0,
        0,
        tick.time,
        spec.digits,
        spread,
        True,
        0,
        spec.calc_mode,
        spec.trade_mode,
        0,
        0,
        spec.stops_level,
        spec.freeze_level,
        spec.execution,
        mt5.SYMBOL_SWAP_MODE_POINTS,
        mt5.DAY_OF_WEEK_WEDNESDAY,
        False,
        spec.expiration_mode,
        spec.filling_mode,
        spec.order_mode,
        spec.order_gtc_mode,
        0,
        0,
    )
    floats = (
        tick.bid,
        high or tick.bid,
        low or tick.bid,
        tick.ask,
        high and high + spread * point,
        low and low + spread * point,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        point,
        tick_value,
        tick_value,
        tick_value,
        point,
        spec.contract_size,
        0.0,
        0.0,
        0.0,
        spec.volume_min,
        spec.volume_max,
        spec.volume_step,
        spec.volume_limit,
        spec.swap_long,
        spec.swap_short,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        day_open,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        hedged,
        change,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    )
    strs = (
        "",
        "",
        spec.currency_base,
        spec.currency_profit,
        spec.currency_margin,
        "",
        spec.description,
        "",
        "",
        "",
        spec.name,
        "",
        spec.path + "\\" + spec.name if spec.path else spec.name,
    )
    return SymbolInfo._make((*ints, *(float(round(f, 8)) for f in floats), *strs))


# -- rates and ticks -----------------------------------------------------------------------------------
def _bucket(minute_s: int, timeframe: int) -> int:
    if timeframe == mt5.TIMEFRAME_W1:  # MT5 weeks start on Sunday
        day = minute_s - minute_s % 86400
        weekday_sun0 = (day // 86400 + 4) % 7
        return day - weekday_sun0 * 86400
    if timeframe == mt5.TIMEFRAME_MN1:
        d = dt.datetime.fromtimestamp(minute_s, dt.UTC)
        return calendar.timegm((d.year, d.month, 1, 0, 0, 0))
    seconds = timeframe_seconds(timeframe)
    return minute_s - minute_s % seconds


def timeframe_seconds(timeframe: int) -> int:
    if timeframe & 0xC000 == 0x4000:
        return (timeframe & 0x3FFF) * 3600
    if timeframe == mt5.TIMEFRAME_W1:
        return 7 * 86400
    if timeframe == mt5.TIMEFRAME_MN1:
        return 31 * 86400
    return timeframe * 60


def aggregate(m1: Iterable[tuple[int, Bar]], timeframe: int) -> list[tuple[int, Bar]]:
    """M1 bars (oldest first) -> bars of ``timeframe``."""
    out: list[tuple[int, Bar]] = []
    for minute, bar in m1:
        start = _bucket(minute, timeframe)
        if out and out[-1][0] == start:
            agg = out[-1][1]
            agg[1], agg[2], agg[3] = max(agg[1], bar[1]), min(agg[2], bar[2]), bar[3]
            agg[4] += bar[4]
            agg[5] = bar[5]
        else:
            out.append((start, list(bar)))
    return out


def rates(server: TradeServer, symbol: str, timeframe: int, since_s: int | None = None) -> RatesArray:
    """The last :data:`MAX_BARS` bars of ``timeframe`` (oldest first); with ``since_s``, a deep history need
    only reach back that far (older bars may be missing). The generated history never changes, so its
    aggregation is kept per timeframe; only the live bars are aggregated per call."""
    feed = server.feeds[symbol]
    if feed.deep is not None:
        history = feed.deep.rates(timeframe, since_s)
    else:
        cached = feed.history_rates.get(timeframe)
        if cached is None:
            cached = rates_array(aggregate(feed.history().items(), timeframe)[-MAX_BARS:])
            feed.history_rates[timeframe] = cached
        history = cached
    live = rates_array(aggregate(feed.bars.items(), timeframe))
    if len(history) and len(live) and history["time"][-1] == live["time"][0]:
        merged = live[:1].copy()  # a bucket across the start: merge both halves
        last = history[-1]
        merged["open"] = last["open"]
        merged["high"] = max(last["high"], live["high"][0])
        merged["low"] = min(last["low"], live["low"][0])
        merged["tick_volume"] = last["tick_volume"] + live["tick_volume"][0]
        return np.concatenate((history[-MAX_BARS:-1], merged, live[1:]))[-MAX_BARS:]
    return np.concatenate((history[-MAX_BARS:], live))[-MAX_BARS:]


def rates_array(bars: list[tuple[int, Bar]]) -> RatesArray:
    array = np.zeros(len(bars), dtype=RATES_DTYPE)
    for i, (start, b) in enumerate(bars):
        array[i] = (start, b[0], b[1], b[2], b[3], int(b[4]), int(b[5]), 0)
    return array


def ticks_array(ticks: list[Tick]) -> TicksArray:
    array = np.zeros(len(ticks), dtype=TICKS_DTYPE)
    for i, t in enumerate(ticks):
        array[i] = (t.time, t.bid, t.ask, t.last, t.volume, t.time_msc, t.flags, t.volume_real)
    return array
