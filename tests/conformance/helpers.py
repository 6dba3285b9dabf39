"""Request builders shared by the conformance tests (plain MT5 request dicts, floats where MT5 wants them)."""

from __future__ import annotations

from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import OrderSendResult
from mtrobot.broker.terminal import Terminal


async def filling_for(term: Terminal, symbol: str) -> int:
    """The filling a market order may use on this symbol (MT5_REFERENCE.md 5.3)."""
    info = await term.symbol_info(symbol)
    assert info is not None
    if info.filling_mode & mt5.SYMBOL_FILLING_FOK:
        return mt5.ORDER_FILLING_FOK
    if info.filling_mode & mt5.SYMBOL_FILLING_IOC:
        return mt5.ORDER_FILLING_IOC
    return mt5.ORDER_FILLING_RETURN


async def market(term: Terminal, symbol: str, side: int, volume: float = 0.1, **extra: Any) -> dict[str, Any]:
    tick = await term.symbol_info_tick(symbol)
    assert tick is not None
    request: dict[str, Any] = {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": symbol,
        "volume": float(volume),
        "type": side,
        "price": tick.ask if side == mt5.ORDER_TYPE_BUY else tick.bid,
        "deviation": 20,
        "type_filling": await filling_for(term, symbol),
        "magic": 4242,
        "comment": "conformance",
    }
    request.update(extra)
    return request


async def send_market(
    term: Terminal, symbol: str, side: int, volume: float = 0.1, **extra: Any
) -> OrderSendResult:
    result = await term.order_send(await market(term, symbol, side, volume, **extra))
    assert result is not None, await term.last_error()
    return result


async def open_position(term: Terminal, symbol: str, side: int, volume: float = 0.1, **extra: Any) -> int:
    """Open a position and return its ticket (= the order ticket, MT5_REFERENCE.md 6.10)."""
    result = await send_market(term, symbol, side, volume, **extra)
    assert result.retcode == mt5.TRADE_RETCODE_DONE, result
    return result.order


async def pending(
    term: Terminal, symbol: str, order_type: int, distance_points: int, volume: float = 0.1, **extra: Any
) -> dict[str, Any]:
    """A pending order ``distance_points`` away from the market on its valid side."""
    tick = await term.symbol_info_tick(symbol)
    info = await term.symbol_info(symbol)
    assert tick is not None and info is not None
    d = distance_points * info.point
    price = {
        mt5.ORDER_TYPE_BUY_LIMIT: tick.ask - d,
        mt5.ORDER_TYPE_SELL_LIMIT: tick.bid + d,
        mt5.ORDER_TYPE_BUY_STOP: tick.ask + d,
        mt5.ORDER_TYPE_SELL_STOP: tick.bid - d,
        mt5.ORDER_TYPE_BUY_STOP_LIMIT: tick.ask + d,
        mt5.ORDER_TYPE_SELL_STOP_LIMIT: tick.bid - d,
    }[order_type]
    request: dict[str, Any] = {
        "action": mt5.TRADE_ACTION_PENDING,
        "symbol": symbol,
        "volume": float(volume),
        "type": order_type,
        "price": round(price, info.digits),
        "type_filling": mt5.ORDER_FILLING_RETURN,
        "magic": 4242,
    }
    if order_type == mt5.ORDER_TYPE_BUY_STOP_LIMIT:
        request["stoplimit"] = round(price - d / 2, info.digits)
    if order_type == mt5.ORDER_TYPE_SELL_STOP_LIMIT:
        request["stoplimit"] = round(price + d / 2, info.digits)
    request.update(extra)
    return request


def placed(result: OrderSendResult | None) -> int:
    assert result is not None
    assert result.retcode in (mt5.TRADE_RETCODE_DONE, mt5.TRADE_RETCODE_PLACED), result
    return result.order
