"""The trade server's request checks, as pure functions that raise :class:`Refuse` with the retcode MT5
answers (MT5_REFERENCE.md sections 5 and 6)."""

from __future__ import annotations

import math

from mtrobot.broker import constants as mt5
from mtrobot.broker.retcodes import retcode_comment
from mtrobot.broker.structures import Tick
from mtrobot.sim.config import SymbolSpec

BUY_TYPES = frozenset(
    {mt5.ORDER_TYPE_BUY, mt5.ORDER_TYPE_BUY_LIMIT, mt5.ORDER_TYPE_BUY_STOP, mt5.ORDER_TYPE_BUY_STOP_LIMIT}
)
PENDING_TYPES = frozenset(range(mt5.ORDER_TYPE_BUY_LIMIT, mt5.ORDER_TYPE_SELL_STOP_LIMIT + 1))
_ORDER_MODE_BIT = {
    mt5.ORDER_TYPE_BUY: mt5.SYMBOL_ORDER_MARKET,
    mt5.ORDER_TYPE_SELL: mt5.SYMBOL_ORDER_MARKET,
    mt5.ORDER_TYPE_BUY_LIMIT: mt5.SYMBOL_ORDER_LIMIT,
    mt5.ORDER_TYPE_SELL_LIMIT: mt5.SYMBOL_ORDER_LIMIT,
    mt5.ORDER_TYPE_BUY_STOP: mt5.SYMBOL_ORDER_STOP,
    mt5.ORDER_TYPE_SELL_STOP: mt5.SYMBOL_ORDER_STOP,
    mt5.ORDER_TYPE_BUY_STOP_LIMIT: mt5.SYMBOL_ORDER_STOP_LIMIT,
    mt5.ORDER_TYPE_SELL_STOP_LIMIT: mt5.SYMBOL_ORDER_STOP_LIMIT,
    mt5.ORDER_TYPE_CLOSE_BY: mt5.SYMBOL_ORDER_CLOSEBY,
}
_EXPIRATION_BIT = {
    mt5.ORDER_TIME_GTC: mt5.SYMBOL_EXPIRATION_GTC,
    mt5.ORDER_TIME_DAY: mt5.SYMBOL_EXPIRATION_DAY,
    mt5.ORDER_TIME_SPECIFIED: mt5.SYMBOL_EXPIRATION_SPECIFIED,
    mt5.ORDER_TIME_SPECIFIED_DAY: mt5.SYMBOL_EXPIRATION_SPECIFIED_DAY,
}


class Refuse(Exception):
    """The server refuses a request with ``retcode``."""

    def __init__(self, retcode: int, comment: str | None = None) -> None:
        super().__init__(comment or retcode_comment(retcode))
        self.retcode = retcode
        self.comment = comment or retcode_comment(retcode)


def symbol_trade_mode(spec: SymbolSpec, *, opening: bool, buy: bool) -> None:
    mode = spec.trade_mode
    if mode == mt5.SYMBOL_TRADE_MODE_DISABLED:
        raise Refuse(mt5.TRADE_RETCODE_TRADE_DISABLED)
    if not opening:
        return
    if mode == mt5.SYMBOL_TRADE_MODE_CLOSEONLY:
        raise Refuse(mt5.TRADE_RETCODE_CLOSE_ONLY)
    if mode == mt5.SYMBOL_TRADE_MODE_LONGONLY and not buy:
        raise Refuse(mt5.TRADE_RETCODE_LONG_ONLY)
    if mode == mt5.SYMBOL_TRADE_MODE_SHORTONLY and buy:
        raise Refuse(mt5.TRADE_RETCODE_SHORT_ONLY)


def order_type_allowed(spec: SymbolSpec, order_type: int) -> None:
    bit = _ORDER_MODE_BIT.get(order_type)
    if bit is None or not spec.order_mode & bit:
        raise Refuse(mt5.TRADE_RETCODE_INVALID_ORDER)


def filling_allowed(spec: SymbolSpec, filling: int, *, pending: bool) -> None:
    """Execution mode × filling policy (section 5.3)."""
    if pending:
        if filling != mt5.ORDER_FILLING_RETURN:
            raise Refuse(mt5.TRADE_RETCODE_INVALID_FILL)
        return
    exe = spec.execution
    if filling == mt5.ORDER_FILLING_FOK:
        ok = exe in (0, 1) or bool(spec.filling_mode & mt5.SYMBOL_FILLING_FOK)
    elif filling == mt5.ORDER_FILLING_IOC:
        ok = exe in (0, 1) or bool(spec.filling_mode & mt5.SYMBOL_FILLING_IOC)
    elif filling == mt5.ORDER_FILLING_RETURN:
        ok = exe != mt5.SYMBOL_TRADE_EXECUTION_MARKET
    else:
        ok = False
    if not ok:
        raise Refuse(mt5.TRADE_RETCODE_INVALID_FILL)


def volume_valid(spec: SymbolSpec, volume: float) -> None:
    if not math.isfinite(volume) or volume < spec.volume_min - 1e-9 or volume > spec.volume_max + 1e-9:
        raise Refuse(mt5.TRADE_RETCODE_INVALID_VOLUME)
    steps = volume / spec.volume_step
    if abs(steps - round(steps)) > 1e-6:
        raise Refuse(mt5.TRADE_RETCODE_INVALID_VOLUME)


def on_tick_grid(spec: SymbolSpec, price: float) -> bool:
    steps = price / spec.point
    return math.isfinite(price) and abs(steps - round(steps)) < 1e-6 * max(1.0, abs(steps)) ** 0.5


def _far_enough(distance: float, level_points: int, spec: SymbolSpec, strict: bool) -> bool:
    """``distance`` (price units, positive = right side) against the stops/freeze level in points."""
    minimum = level_points * spec.point
    eps = spec.point * 1e-3
    if level_points == 0:
        return distance > eps
    return distance > minimum + eps if strict else distance > minimum - eps


def stops_valid(spec: SymbolSpec, *, buy: bool, reference: float, sl: float, tp: float, strict: bool) -> None:
    """SL/TP against the stops level from ``reference`` (the order's open price for a pending order, the
    closing price for a position)."""
    for level in (sl, tp):
        if level < 0 or (level and not on_tick_grid(spec, level)):
            raise Refuse(mt5.TRADE_RETCODE_INVALID_STOPS)
    if sl and not _far_enough((reference - sl) if buy else (sl - reference), spec.stops_level, spec, strict):
        raise Refuse(mt5.TRADE_RETCODE_INVALID_STOPS)
    if tp and not _far_enough((tp - reference) if buy else (reference - tp), spec.stops_level, spec, strict):
        raise Refuse(mt5.TRADE_RETCODE_INVALID_STOPS)


def pending_price_valid(
    spec: SymbolSpec, order_type: int, price: float, stoplimit: float, tick: Tick, strict: bool
) -> None:
    """Open price on the right side of the market by at least the stops level (section 5.4, 6.2)."""
    if price <= 0 or not on_tick_grid(spec, price):
        raise Refuse(mt5.TRADE_RETCODE_INVALID_PRICE)
    ask, bid, level = tick.ask, tick.bid, spec.stops_level
    distance = {
        mt5.ORDER_TYPE_BUY_LIMIT: ask - price,
        mt5.ORDER_TYPE_SELL_LIMIT: price - bid,
        mt5.ORDER_TYPE_BUY_STOP: price - ask,
        mt5.ORDER_TYPE_SELL_STOP: bid - price,
        mt5.ORDER_TYPE_BUY_STOP_LIMIT: price - ask,
        mt5.ORDER_TYPE_SELL_STOP_LIMIT: bid - price,
    }[order_type]
    if not _far_enough(distance, level, spec, strict):
        raise Refuse(mt5.TRADE_RETCODE_INVALID_PRICE)
    if order_type in (mt5.ORDER_TYPE_BUY_STOP_LIMIT, mt5.ORDER_TYPE_SELL_STOP_LIMIT):
        if stoplimit <= 0 or not on_tick_grid(spec, stoplimit):
            raise Refuse(mt5.TRADE_RETCODE_INVALID_PRICE)
        below = order_type == mt5.ORDER_TYPE_BUY_STOP_LIMIT
        gap = (price - stoplimit) if below else (stoplimit - price)
        if not _far_enough(gap, level, spec, strict):
            raise Refuse(mt5.TRADE_RETCODE_INVALID_PRICE)


def frozen_position(spec: SymbolSpec, *, buy: bool, sl: float, tp: float, tick: Tick) -> bool:
    """True if a position's SL or TP is within the freeze level of the market (section 6.2)."""
    if spec.freeze_level <= 0:
        return False
    close = tick.bid if buy else tick.ask
    fz = spec.freeze_level * spec.point
    for level, sign in ((sl, 1), (tp, -1)):
        if not level:
            continue
        distance = (close - level) * sign if buy else (level - close) * sign
        if distance <= fz:
            return True
    return False


def frozen_order(spec: SymbolSpec, order_type: int, price: float, tick: Tick) -> bool:
    if spec.freeze_level <= 0:
        return False
    distance = {
        mt5.ORDER_TYPE_BUY_LIMIT: tick.ask - price,
        mt5.ORDER_TYPE_SELL_LIMIT: price - tick.bid,
        mt5.ORDER_TYPE_BUY_STOP: price - tick.ask,
        mt5.ORDER_TYPE_SELL_STOP: tick.bid - price,
        mt5.ORDER_TYPE_BUY_STOP_LIMIT: price - tick.ask,
        mt5.ORDER_TYPE_SELL_STOP_LIMIT: tick.bid - price,
    }.get(order_type, math.inf)
    return distance <= spec.freeze_level * spec.point


def expiration_valid(spec: SymbolSpec, type_time: int, expiration: int, now_s: int) -> None:
    bit = _EXPIRATION_BIT.get(type_time)
    if bit is None or not spec.expiration_mode & bit:
        raise Refuse(mt5.TRADE_RETCODE_INVALID_EXPIRATION)
    if type_time == mt5.ORDER_TIME_SPECIFIED and expiration <= now_s:
        raise Refuse(mt5.TRADE_RETCODE_INVALID_EXPIRATION)
    if type_time == mt5.ORDER_TIME_SPECIFIED_DAY and expiration // 86400 < now_s // 86400:
        raise Refuse(mt5.TRADE_RETCODE_INVALID_EXPIRATION)
