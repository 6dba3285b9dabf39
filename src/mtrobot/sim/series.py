"""The bar and tick functions of a terminal session (copy_rates_*, copy_ticks_*), checked like the binding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mtrobot.broker import constants as mt5
from mtrobot.sim import views
from mtrobot.sim.args import TIMEFRAMES, InvalidArgument, arity, int_arg, number_arg, str_arg
from mtrobot.sim.deep_history import MAX_TICKS as MAX_HISTORY_TICKS
from mtrobot.sim.server import TradeServer

Reply = tuple[Any, tuple[int, str]]
Require = Callable[[], TradeServer]
OK = (mt5.RES_S_OK, "Success")
NOT_FOUND = (mt5.RES_E_NOT_FOUND, "Terminal: Not found")


def _series_symbol(args: list[Any], require: Require) -> tuple[TradeServer, str] | None:
    server = require()
    name = str_arg(args, 0)
    return (server, name) if name in server.specs else None


def _timeframe(args: list[Any]) -> int:
    tf = int_arg(args, 1)
    if tf not in TIMEFRAMES:
        raise InvalidArgument("Invalid 2nd unnamed argument")
    return tf


def _bars_back(server: TradeServer, symbol: str, tf: int, end_s: float, count: int) -> Any:
    """Bars with open time <= ``end_s``, at least ``count`` of them when the history has them: the deep
    history is asked to reach back about as far as that needs, and all the way when that was not enough."""
    span = count * views.timeframe_seconds(tf) * 1.5 + 4 * 86_400  # weekends and breaks have no bars
    bars = views.rates(server, symbol, tf, int(end_s - span))
    if len(bars[bars["time"] <= end_s]) < count:
        bars = views.rates(server, symbol, tf)
    return bars[bars["time"] <= end_s]


def copy_rates_from(args: list[Any], kwargs: dict[str, Any], require: Require) -> Reply:
    arity(args, kwargs, 4, 4, set())
    tf, date_from, count = _timeframe(args), number_arg(args, 2, 0), int_arg(args, 3, 1, 2**31 - 1)
    found = _series_symbol(args, require)
    if found is None:
        return None, NOT_FOUND
    return _bars_back(found[0], found[1], tf, date_from, count)[-count:].copy(), OK


def copy_rates_from_pos(args: list[Any], kwargs: dict[str, Any], require: Require) -> Reply:
    arity(args, kwargs, 4, 4, set())
    tf, start, count = _timeframe(args), int_arg(args, 2, 0), int_arg(args, 3, 1, 2**31 - 1)
    found = _series_symbol(args, require)
    if found is None:
        return None, NOT_FOUND
    bars = _bars_back(found[0], found[1], tf, found[0].now_ms() // 1000 + 60, start + count)
    end = len(bars) - start
    return bars[max(0, end - count) : max(0, end)].copy(), OK


def copy_rates_range(args: list[Any], kwargs: dict[str, Any], require: Require) -> Reply:
    arity(args, kwargs, 4, 4, set())
    tf, start, end = _timeframe(args), number_arg(args, 2, 0), number_arg(args, 3, 0)
    found = _series_symbol(args, require)
    if found is None:
        return None, NOT_FOUND
    bars = views.rates(found[0], found[1], tf, int(start))
    return bars[(bars["time"] >= start) & (bars["time"] <= end)].copy(), OK


def _tick_flags(args: list[Any], index: int) -> int:
    flags = int_arg(args, index)
    if flags not in (mt5.COPY_TICKS_ALL, mt5.COPY_TICKS_INFO, mt5.COPY_TICKS_TRADE):
        raise InvalidArgument("Invalid 4th unnamed argument")
    return flags


def copy_ticks_from(args: list[Any], kwargs: dict[str, Any], require: Require) -> Reply:
    arity(args, kwargs, 4, 4, set())
    date_from, count = number_arg(args, 1, 0), int_arg(args, 2, 1, 2**31 - 1)
    flags = _tick_flags(args, 3)
    found = _series_symbol(args, require)
    if found is None:
        return None, NOT_FOUND
    if flags == mt5.COPY_TICKS_TRADE:
        return views.ticks_array([]), OK
    return _ticks(found[0], found[1], int(date_from * 1000), None, count), OK


def copy_ticks_range(args: list[Any], kwargs: dict[str, Any], require: Require) -> Reply:
    arity(args, kwargs, 4, 4, set())
    start, end = number_arg(args, 1, 0), number_arg(args, 2, 0)
    flags = _tick_flags(args, 3)
    found = _series_symbol(args, require)
    if found is None:
        return None, NOT_FOUND
    if flags == mt5.COPY_TICKS_TRADE:
        return views.ticks_array([]), OK
    return _ticks(found[0], found[1], int(start * 1000), int(end * 1000), None), OK


def _ticks(server: TradeServer, symbol: str, start_ms: int, end_ms: int | None, count: int | None) -> Any:
    """Ticks from ``start_ms`` (to ``end_ms``, at most ``count``): the deep history's, then the live ones."""
    feed = server.feeds[symbol]
    live = [t for t in feed.ticks if t.time_msc >= start_ms and (end_ms is None or t.time_msc <= end_ms)]
    history = views.ticks_array([])
    first_live = feed.ticks[0].time_msc if feed.ticks else server.now_ms() + 1
    if feed.deep is not None and start_ms < first_live:
        until = first_live - 1 if end_ms is None else min(end_ms, first_live - 1)
        history = feed.deep.ticks(start_ms, until, min(count or MAX_HISTORY_TICKS, MAX_HISTORY_TICKS))
    if count is not None:
        live = live[: max(0, count - len(history))]
    return np.concatenate((history, views.ticks_array(live)))
