"""The bar and tick functions of a terminal session (copy_rates_*, copy_ticks_*), checked like the binding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.sim import views
from mtrobot.sim.args import TIMEFRAMES, InvalidArgument, arity, int_arg, number_arg, str_arg
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


def copy_rates_from(args: list[Any], kwargs: dict[str, Any], require: Require) -> Reply:
    arity(args, kwargs, 4, 4, set())
    tf, date_from, count = _timeframe(args), number_arg(args, 2, 0), int_arg(args, 3, 1, 2**31 - 1)
    found = _series_symbol(args, require)
    if found is None:
        return None, NOT_FOUND
    bars = [b for b in views.rates(found[0], found[1], tf) if b[0] <= date_from]
    return views.rates_array(bars[-count:]), OK


def copy_rates_from_pos(args: list[Any], kwargs: dict[str, Any], require: Require) -> Reply:
    arity(args, kwargs, 4, 4, set())
    tf, start, count = _timeframe(args), int_arg(args, 2, 0), int_arg(args, 3, 1, 2**31 - 1)
    found = _series_symbol(args, require)
    if found is None:
        return None, NOT_FOUND
    bars = views.rates(found[0], found[1], tf)
    end = len(bars) - start
    return views.rates_array(bars[max(0, end - count) : max(0, end)]), OK


def copy_rates_range(args: list[Any], kwargs: dict[str, Any], require: Require) -> Reply:
    arity(args, kwargs, 4, 4, set())
    tf, start, end = _timeframe(args), number_arg(args, 2, 0), number_arg(args, 3, 0)
    found = _series_symbol(args, require)
    if found is None:
        return None, NOT_FOUND
    bars = [b for b in views.rates(found[0], found[1], tf) if start <= b[0] <= end]
    return views.rates_array(bars), OK


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
    ticks = [] if flags == mt5.COPY_TICKS_TRADE else list(found[0].feeds[found[1]].ticks)
    selected = [t for t in ticks if t.time_msc >= date_from * 1000][:count]
    return views.ticks_array(selected), OK


def copy_ticks_range(args: list[Any], kwargs: dict[str, Any], require: Require) -> Reply:
    arity(args, kwargs, 4, 4, set())
    start, end = number_arg(args, 1, 0), number_arg(args, 2, 0)
    flags = _tick_flags(args, 3)
    found = _series_symbol(args, require)
    if found is None:
        return None, NOT_FOUND
    ticks = [] if flags == mt5.COPY_TICKS_TRADE else list(found[0].feeds[found[1]].ticks)
    return views.ticks_array([t for t in ticks if start * 1000 <= t.time_msc <= end * 1000]), OK
