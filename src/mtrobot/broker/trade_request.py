"""Turning an OrderRequest into the MT5 trade request dict (MT5_REFERENCE.md section 5).

Prices are rounded to the symbol's digits, volumes sent as floats, the filling mode chosen from the
symbol's flags when the order does not name one, and the comment is only the short tag derived from the
order_id (brokers cut comments; the tag is what the lookup after a crash searches for).

It lives in ``broker`` so that everything that sends an OrderRequest to a terminal builds it the same way:
the connector, and the robots' backtest, which sends straight to the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import SymbolInfo, Tick, TradeOrder, TradePosition
from mtrobot.core.orders import Filling, OrderAction, OrderRequest, OrderType

ORDER_TYPES: dict[OrderType, int] = {
    OrderType.BUY: mt5.ORDER_TYPE_BUY,
    OrderType.SELL: mt5.ORDER_TYPE_SELL,
    OrderType.BUY_LIMIT: mt5.ORDER_TYPE_BUY_LIMIT,
    OrderType.SELL_LIMIT: mt5.ORDER_TYPE_SELL_LIMIT,
    OrderType.BUY_STOP: mt5.ORDER_TYPE_BUY_STOP,
    OrderType.SELL_STOP: mt5.ORDER_TYPE_SELL_STOP,
    OrderType.BUY_STOP_LIMIT: mt5.ORDER_TYPE_BUY_STOP_LIMIT,
    OrderType.SELL_STOP_LIMIT: mt5.ORDER_TYPE_SELL_STOP_LIMIT,
}


@dataclass(frozen=True, slots=True)
class Market:
    """What the broker said about the request's symbol and targets, read just before the request is built
    (and, in the connector, validated)."""

    info: SymbolInfo | None
    tick: Tick | None
    position: TradePosition | None = None
    order: TradeOrder | None = None


FILLINGS: dict[Filling, int] = {
    Filling.FOK: mt5.ORDER_FILLING_FOK,
    Filling.IOC: mt5.ORDER_FILLING_IOC,
    Filling.RETURN: mt5.ORDER_FILLING_RETURN,
}


def market_filling(info: SymbolInfo) -> int:
    """FOK if allowed, else IOC, else RETURN, but never RETURN under Market execution (section 5.3)."""
    if info.filling_mode & mt5.SYMBOL_FILLING_FOK:
        return mt5.ORDER_FILLING_FOK
    if info.filling_mode & mt5.SYMBOL_FILLING_IOC:
        return mt5.ORDER_FILLING_IOC
    if info.trade_exemode == mt5.SYMBOL_TRADE_EXECUTION_MARKET:
        return mt5.ORDER_FILLING_FOK
    return mt5.ORDER_FILLING_RETURN


def _price(value: float | None, info: SymbolInfo) -> float:
    return round(float(value), info.digits) if value else 0.0


def build(
    request: OrderRequest,
    market: Market,
    *,
    tag: str,
    magic: int,
    default_deviation: int = 10,
) -> dict[str, Any]:
    """The trade request for ``request``, priced from ``market`` (read just before this attempt)."""
    info, tick = market.info, market.tick
    assert info is not None
    if request.action is OrderAction.OPEN:
        return _open(request, info, tick, tag, magic, default_deviation)
    if request.action is OrderAction.CLOSE:
        return _close(request, info, tick, market, tag, magic, default_deviation)
    if request.action is OrderAction.CANCEL:
        return {"action": mt5.TRADE_ACTION_REMOVE, "order": int(request.ticket or 0)}
    if market.position is not None:
        pos = market.position
        return {
            "action": mt5.TRADE_ACTION_SLTP,
            "symbol": pos.symbol,
            "position": int(pos.ticket),
            # 0 removes a level on SLTP: resend the levels the order does not change.
            "sl": _price(request.sl if request.sl is not None else pos.sl, info),
            "tp": _price(request.tp if request.tp is not None else pos.tp, info),
        }
    order = market.order
    assert order is not None
    return {
        "action": mt5.TRADE_ACTION_MODIFY,
        "order": int(order.ticket),
        "symbol": order.symbol,
        "price": _price(request.price if request.price is not None else order.price_open, info),
        "stoplimit": _price(
            request.stoplimit if request.stoplimit is not None else order.price_stoplimit, info
        ),
        "sl": _price(request.sl if request.sl is not None else order.sl, info),
        "tp": _price(request.tp if request.tp is not None else order.tp, info),
        "type_time": int(order.type_time),
        "expiration": int(order.time_expiration),
    }


def _open(
    request: OrderRequest, info: SymbolInfo, tick: Tick | None, tag: str, magic: int, deviation: int
) -> dict[str, Any]:
    assert request.order_type is not None and request.volume is not None
    order_type = request.order_type
    base: dict[str, Any] = {
        "symbol": info.name,
        "volume": float(request.volume),
        "type": ORDER_TYPES[order_type],
        "sl": _price(request.sl, info),
        "tp": _price(request.tp, info),
        "magic": int(magic),
        "comment": tag,
        "type_time": mt5.ORDER_TIME_GTC,
    }
    if order_type.is_market:
        price = (tick.ask if order_type.is_buy else tick.bid) if tick else 0.0
        filling = FILLINGS[request.filling] if request.filling else market_filling(info)
        return base | {
            "action": mt5.TRADE_ACTION_DEAL,
            "price": _price(price, info),
            "deviation": int(request.deviation if request.deviation is not None else deviation),
            "type_filling": filling,
        }
    return base | {
        "action": mt5.TRADE_ACTION_PENDING,
        "price": _price(request.price, info),
        "stoplimit": _price(request.stoplimit, info),
        "type_filling": FILLINGS[request.filling] if request.filling else mt5.ORDER_FILLING_RETURN,
    }


def _close(
    request: OrderRequest,
    info: SymbolInfo,
    tick: Tick | None,
    market: Market,
    tag: str,
    magic: int,
    deviation: int,
) -> dict[str, Any]:
    pos = market.position
    assert pos is not None
    closing_buy = pos.type == mt5.POSITION_TYPE_BUY
    price = (tick.bid if closing_buy else tick.ask) if tick else 0.0
    volume = request.volume if request.volume is not None else pos.volume
    return {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": pos.symbol,
        "position": int(pos.ticket),
        "volume": float(volume),
        "type": mt5.ORDER_TYPE_SELL if closing_buy else mt5.ORDER_TYPE_BUY,
        "price": _price(price, info),
        "deviation": int(request.deviation if request.deviation is not None else deviation),
        "type_filling": FILLINGS[request.filling] if request.filling else market_filling(info),
        "magic": int(magic),
        "comment": tag,
    }
