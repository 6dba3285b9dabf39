"""Validation before anything is sent: the payload schema, then the symbol's constraints.

Every refusal is a :class:`Refusal` with the MT5 retcode the server would have answered and a sentence a
trader understands; the connector publishes it as a BrokerError of category ``validation``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import SymbolInfo, Tick, TradePosition
from mtrobot.broker.trade_request import Market
from mtrobot.core.orders import VOLUME_TOLERANCE, OrderAction, OrderRequest, OrderType
from mtrobot.core.strict import number_text

from .intake import Parsed, Refusal
from .intake import read_order as parse

__all__ = ["Parsed", "Refusal", "TradingSession", "check_request", "parse"]

INVALID = 10013
INVALID_VOLUME = 10014
INVALID_PRICE = 10015
INVALID_STOPS = 10016
TRADE_DISABLED = 10017
MARKET_CLOSED = 10018
LONG_ONLY = 10042
SHORT_ONLY = 10043
CLOSE_ONLY = 10044
INVALID_CLOSE_VOLUME = 10038
POSITION_CLOSED = 10036


# -- symbol constraints ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TradingSession:
    """A daily window (UTC) on given weekdays (0 = Monday) during which a symbol trades."""

    weekdays: frozenset[int]
    start: time
    end: time

    def contains(self, now: datetime) -> bool:
        now = now.astimezone(UTC)
        if now.weekday() not in self.weekdays:
            return False
        t = now.time()
        return self.start <= t < self.end if self.start <= self.end else (t >= self.start or t < self.end)


def _fmt(x: float) -> str:
    return number_text(x)


def check_volume(volume: float, info: SymbolInfo) -> Refusal | None:
    sym = info.name
    if volume < info.volume_min - 1e-12:
        return Refusal(
            INVALID_VOLUME,
            f"Volume {_fmt(volume)} is below the minimum of {_fmt(info.volume_min)} lots for {sym}.",
        )
    if info.volume_max and volume > info.volume_max + 1e-12:
        return Refusal(
            INVALID_VOLUME,
            f"Volume {_fmt(volume)} is above the maximum of {_fmt(info.volume_max)} lots for {sym}.",
        )
    if info.volume_step > 0:
        steps = volume / info.volume_step
        if not math.isclose(steps, round(steps), abs_tol=1e-7):
            return Refusal(
                INVALID_VOLUME,
                f"Volume {_fmt(volume)} is not a multiple of the volume step "
                f"{_fmt(info.volume_step)} for {sym}.",
            )
    return None


def check_trade_mode(info: SymbolInfo, buy: bool, opening: bool) -> Refusal | None:
    mode, sym = info.trade_mode, info.name
    if mode == mt5.SYMBOL_TRADE_MODE_DISABLED:
        return Refusal(TRADE_DISABLED, f"Trading {sym} is disabled by the broker.")
    if mode == mt5.SYMBOL_TRADE_MODE_CLOSEONLY and opening:
        return Refusal(CLOSE_ONLY, f"{sym} is close-only at the broker: new positions are not allowed.")
    if mode == mt5.SYMBOL_TRADE_MODE_LONGONLY and opening and not buy:
        return Refusal(LONG_ONLY, f"Only buying is allowed on {sym}.")
    if mode == mt5.SYMBOL_TRADE_MODE_SHORTONLY and opening and buy:
        return Refusal(SHORT_ONLY, f"Only selling is allowed on {sym}.")
    return None


def check_market_hours(symbol: str, sessions: tuple[TradingSession, ...], now: datetime) -> Refusal | None:
    if sessions and not any(s.contains(now) for s in sessions):
        return Refusal(MARKET_CLOSED, f"The market for {symbol} is closed now.")
    return None


def _far_enough(distance: float, info: SymbolInfo, strict: bool) -> bool:
    """Compare in points (rounded) so that float noise never decides; strict means "more than"."""
    if info.trade_stops_level <= 0 or info.point <= 0:
        return True
    points = round(distance / info.point, 3)
    return points > info.trade_stops_level if strict else points >= info.trade_stops_level


def check_stops(
    *, buy: bool, reference: float, sl: float | None, tp: float | None, info: SymbolInfo, strict: bool = True
) -> Refusal | None:
    """SL below and TP above the reference price for a buy (mirrored for a sell), at least the stops level
    away. ``reference`` is the open price of a pending order or the closing price of a position."""
    sym = info.name
    for name, level in (("stop loss", sl), ("take profit", tp)):
        if not level:
            continue
        below = name == "stop loss" if buy else name == "take profit"
        distance = reference - level if below else level - reference
        side = "below" if below else "above"
        if distance <= 0:
            return Refusal(
                INVALID_STOPS,
                f"The {name} {_fmt(level)} must be {side} "
                f"{_fmt(reference)} for this {'buy' if buy else 'sell'} on {sym}.",
            )
        if not _far_enough(distance, info, strict):
            return Refusal(
                INVALID_STOPS,
                f"The {name} {_fmt(level)} is closer to the price than the "
                f"broker's minimum of {info.trade_stops_level} points on {sym}.",
            )
    return None


def check_pending_price(
    order_type: OrderType,
    price: float,
    stoplimit: float | None,
    tick: Tick,
    info: SymbolInfo,
    strict: bool = True,
) -> Refusal | None:
    """Limits below (buy) / above (sell) the market, stops the other way, at least the stops level away."""
    ask, bid, sym = tick.ask, tick.bid, info.name
    distance = {
        OrderType.BUY_LIMIT: ask - price,
        OrderType.SELL_LIMIT: price - bid,
        OrderType.BUY_STOP: price - ask,
        OrderType.SELL_STOP: bid - price,
        OrderType.BUY_STOP_LIMIT: price - ask,
        OrderType.SELL_STOP_LIMIT: bid - price,
    }[order_type]
    kind = order_type.value.replace("_", " ")
    if distance <= 0:
        where = (
            "below"
            if order_type in (OrderType.BUY_LIMIT, OrderType.SELL_STOP, OrderType.SELL_STOP_LIMIT)
            else "above"
        )
        return Refusal(
            INVALID_PRICE,
            f"A {kind} order on {sym} must be priced {where} the market "
            f"(bid {_fmt(bid)}, ask {_fmt(ask)}); got {_fmt(price)}.",
        )
    if not _far_enough(distance, info, strict):
        return Refusal(
            INVALID_PRICE,
            f"The {kind} price {_fmt(price)} is closer to the market than the "
            f"broker's minimum of {info.trade_stops_level} points on {sym}.",
        )
    if order_type.needs_stoplimit and stoplimit is not None:
        wrong = stoplimit >= price if order_type is OrderType.BUY_STOP_LIMIT else stoplimit <= price
        if wrong:
            side = "below" if order_type is OrderType.BUY_STOP_LIMIT else "above"
            return Refusal(
                INVALID_PRICE,
                f"The stop-limit price {_fmt(stoplimit)} must be {side} the trigger price {_fmt(price)}.",
            )
    return None


def check_request(
    request: OrderRequest,
    market: Market,
    *,
    sessions: tuple[TradingSession, ...] = (),
    now: datetime | None = None,
    strict_stops: bool = True,
) -> Refusal | None:
    """The symbol constraints of section 6 of MT5_REFERENCE.md, in the server's order."""
    sym = request.symbol
    info, tick = market.info, market.tick
    if request.action is OrderAction.CLOSE and market.position is None:
        return Refusal(POSITION_CLOSED, f"Position {request.position} is not open (already closed?).")
    if request.action is OrderAction.MODIFY and request.position and market.position is None:
        return Refusal(POSITION_CLOSED, f"Position {request.position} is not open (already closed?).")
    if request.action in (OrderAction.CANCEL, OrderAction.MODIFY) and request.ticket and market.order is None:
        return Refusal(
            INVALID, f"Pending order {request.ticket} is not active (filled, cancelled or expired?)."
        )
    target_symbol = (
        market.position.symbol if market.position else market.order.symbol if market.order else sym
    )
    if target_symbol != sym:
        # The lookup after a lost answer searches by the order's symbol: it must be the target's.
        what = f"position {request.position}" if market.position else f"order {request.ticket}"
        return Refusal(
            INVALID, f"The order was refused: field 'symbol' is '{sym}' but {what} is on '{target_symbol}'."
        )
    if info is None:
        return Refusal(INVALID, f"The broker does not offer the symbol '{sym}'.")
    if request.action is OrderAction.CANCEL:
        return None
    hours = check_market_hours(sym, sessions, now or datetime.now(UTC))
    if hours:
        return hours
    if tick is None or (tick.bid <= 0 and tick.ask <= 0):
        return Refusal(10021, f"The broker has no price for {sym} right now.")
    if request.action is OrderAction.OPEN:
        return _check_open(request, info, tick, strict_stops)
    if request.action is OrderAction.CLOSE:
        return _check_close(request, info, market.position)
    return _check_modify(request, info, tick, market, strict_stops)


def _check_open(request: OrderRequest, info: SymbolInfo, tick: Tick, strict: bool) -> Refusal | None:
    assert request.order_type is not None and request.volume is not None  # the schema guarantees both
    buy = request.order_type.is_buy
    refusal = check_trade_mode(info, buy, opening=True) or check_volume(request.volume, info)
    if refusal:
        return refusal
    if request.order_type.is_market:
        reference = tick.ask if buy else tick.bid
        return check_stops(
            buy=buy, reference=reference, sl=request.sl, tp=request.tp, info=info, strict=strict
        )
    assert request.price is not None
    entry = request.stoplimit if request.order_type.needs_stoplimit and request.stoplimit else request.price
    return check_pending_price(request.order_type, request.price, request.stoplimit, tick, info, strict) or (
        check_stops(buy=buy, reference=entry, sl=request.sl, tp=request.tp, info=info, strict=strict)
    )


def _check_close(request: OrderRequest, info: SymbolInfo, position: TradePosition | None) -> Refusal | None:
    assert position is not None
    refusal = check_trade_mode(info, position.type != mt5.POSITION_TYPE_BUY, opening=False)
    if refusal:
        return refusal
    volume = request.volume if request.volume is not None else position.volume
    if volume > position.volume + VOLUME_TOLERANCE:
        return Refusal(
            INVALID_CLOSE_VOLUME,
            f"Cannot close {_fmt(volume)} lots: position {position.ticket} holds {_fmt(position.volume)}.",
        )
    if volume < position.volume - VOLUME_TOLERANCE:
        return check_volume(volume, info)
    return None


def _check_modify(
    request: OrderRequest, info: SymbolInfo, tick: Tick, market: Market, strict: bool
) -> Refusal | None:
    if market.position is not None:
        pos = market.position
        buy = pos.type == mt5.POSITION_TYPE_BUY
        if request.sl is None and request.tp is None:
            return Refusal(
                INVALID, "The order was refused: field 'sl' or 'tp' is needed to modify a position."
            )
        reference = tick.bid if buy else tick.ask
        return check_stops(
            buy=buy, reference=reference, sl=request.sl, tp=request.tp, info=info, strict=strict
        )
    assert market.order is not None
    order = market.order
    order_type = _PENDING_TYPES.get(order.type)
    if order_type is None:
        return Refusal(INVALID, f"Order {order.ticket} is not a pending order.")
    price = request.price if request.price is not None else order.price_open
    stoplimit = request.stoplimit if request.stoplimit is not None else order.price_stoplimit
    return check_pending_price(order_type, price, stoplimit or None, tick, info, strict) or check_stops(
        buy=order_type.is_buy,
        reference=stoplimit if order_type.needs_stoplimit and stoplimit else price,
        sl=request.sl if request.sl is not None else order.sl,
        tp=request.tp if request.tp is not None else order.tp,
        info=info,
        strict=strict,
    )


_PENDING_TYPES: dict[int, OrderType] = {
    mt5.ORDER_TYPE_BUY_LIMIT: OrderType.BUY_LIMIT,
    mt5.ORDER_TYPE_SELL_LIMIT: OrderType.SELL_LIMIT,
    mt5.ORDER_TYPE_BUY_STOP: OrderType.BUY_STOP,
    mt5.ORDER_TYPE_SELL_STOP: OrderType.SELL_STOP,
    mt5.ORDER_TYPE_BUY_STOP_LIMIT: OrderType.BUY_STOP_LIMIT,
    mt5.ORDER_TYPE_SELL_STOP_LIMIT: OrderType.SELL_STOP_LIMIT,
}
