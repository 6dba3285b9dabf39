"""``Buy``, ``Sell`` and ``Close``: the three helpers the official package defines in its ``__init__.py``
without documenting them (MT5_REFERENCE.md section 0).

They build a TRADE_ACTION_DEAL request with ``deviation=10`` and no ``type_filling`` (so FOK), take the
current price when none is given, and retry up to 10 times on a requote (10004) or "no prices" (10021).
``Close`` closes every position of the symbol (or the one ``ticket``) and answers True when all closed,
``"Partially"`` when some did, False when none did. One repair over the package: where it would raise
``AttributeError`` on a failed call (``None`` has no ``retcode``), these return None and ``last_error()``
tells why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mtrobot.broker import constants as c

TRIES = 10
DEVIATION = 10
_RETRY = (c.TRADE_RETCODE_REQUOTE, c.TRADE_RETCODE_PRICE_OFF)

Call = Callable[..., Any]


def _raw_order(
    send: Call, order_type: int, symbol: Any, volume: Any, price: Any, comment: Any, ticket: Any
) -> Any:
    request: dict[str, Any] = {
        "action": c.TRADE_ACTION_DEAL,
        "symbol": symbol,
        "volume": volume,
        "type": order_type,
        "price": price,
        "deviation": DEVIATION,
    }
    if comment is not None:
        request["comment"] = comment
    if ticket is not None:
        request["position"] = ticket
    return send(request)


def market_order(
    call: Call, order_type: int, symbol: Any, volume: Any, price: Any, comment: Any, ticket: Any
) -> Any:
    """Buy (``order_type`` BUY) or Sell at ``price``, or at the current price with retries."""

    def send(request: dict[str, Any]) -> Any:
        return call("order_send", request)

    if price is not None:
        return _raw_order(send, order_type, symbol, volume, price, comment, ticket)
    result = None
    for _ in range(TRIES):
        tick = call("symbol_info_tick", symbol)
        if tick is None:
            return None
        quote = tick.ask if order_type == c.ORDER_TYPE_BUY else tick.bid
        result = _raw_order(send, order_type, symbol, volume, quote, comment, ticket)
        if result is None or result.retcode not in _RETRY:
            break
    return result


def close_positions(call: Call, symbol: Any, comment: Any, ticket: Any) -> bool | str | None:
    positions = (
        call("positions_get", ticket=ticket) if ticket is not None else call("positions_get", symbol=symbol)
    )
    if positions is None:
        return None
    tried = done = 0
    for position in positions:
        if position.type not in (c.ORDER_TYPE_BUY, c.ORDER_TYPE_SELL):
            continue
        tried += 1
        closing = c.ORDER_TYPE_SELL if position.type == c.ORDER_TYPE_BUY else c.ORDER_TYPE_BUY
        for _ in range(TRIES):
            tick = call("symbol_info_tick", position.symbol)
            if tick is None:
                break
            quote = tick.bid if closing == c.ORDER_TYPE_SELL else tick.ask
            result = _raw_order(
                lambda r: call("order_send", r),
                closing,
                position.symbol,
                position.volume,
                quote,
                comment,
                position.ticket,
            )
            if result is None:
                break
            if result.retcode not in _RETRY:
                done += result.retcode == c.TRADE_RETCODE_DONE
                break
    if done:
        return True if done == tried else "Partially"
    return False
