"""A small fake of our own :class:`~mtrobot.broker.terminal.Terminal` Protocol for executor unit tests.

One hedging account, market and pending orders on EURUSD at a fixed quote, with scripted faults: requote
the next N sends, lose the reply of the next N sends (executed, but the answer is ``None``), or refuse the
next N sends for lack of a connection. The full-fidelity tests run against the real simbroker.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import (
    AccountInfo,
    OrderCheckResult,
    OrderSendResult,
    SymbolInfo,
    TerminalInfo,
    Tick,
    TradeDeal,
    TradeOrder,
    TradePosition,
    TradeRequest,
)


def _zeros(cls: type, **over: Any) -> Any:
    values = {n: ("" if k == "str" else False if k == "bool" else 0) for n, k in cls.__annotations__.items()}
    return cls(**(values | over))


SYMBOL = _zeros(
    SymbolInfo,
    name="EURUSD",
    digits=5,
    point=0.00001,
    volume_min=0.01,
    volume_max=100.0,
    volume_step=0.01,
    trade_mode=mt5.SYMBOL_TRADE_MODE_FULL,
    trade_stops_level=10,
    filling_mode=3,
    trade_exemode=mt5.SYMBOL_TRADE_EXECUTION_INSTANT,
    select=True,
    visible=True,
)


@dataclass
class FakeBroker:
    bid: float = 1.10000
    ask: float = 1.10010
    requote_next: int = 0
    lose_reply_next: int = 0
    disconnect_next: int = 0
    sends: list[dict[str, Any]] = field(default_factory=list)
    positions: dict[int, TradePosition] = field(default_factory=dict)
    orders: dict[int, TradeOrder] = field(default_factory=dict)
    history: list[TradeOrder] = field(default_factory=list)
    deals: list[TradeDeal] = field(default_factory=list)
    tickets: Any = field(default_factory=lambda: itertools.count(1000))

    def executed(self, comment: str) -> int:
        return sum(1 for d in self.deals if d.comment == comment)


class FakeTerminal:
    def __init__(self, broker: FakeBroker) -> None:
        self.b = broker
        self._error = (1, "Success")

    async def initialize(self, *a: Any, **kw: Any) -> bool:
        return True

    async def shutdown(self) -> None:
        return None

    async def last_error(self) -> tuple[int, str]:
        return self._error

    async def terminal_info(self) -> TerminalInfo:
        return _zeros(TerminalInfo, connected=True, trade_allowed=True)

    async def account_info(self) -> AccountInfo:
        return _zeros(
            AccountInfo,
            login=1,
            trade_allowed=True,
            trade_expert=True,
            margin_mode=mt5.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,
        )

    async def symbol_select(self, symbol: str, enable: bool = True, /) -> bool:
        return symbol == "EURUSD"

    async def symbol_info(self, symbol: str, /) -> SymbolInfo | None:
        if symbol != "EURUSD":
            self._error = (-4, "Terminal: Not found")
            return None
        return SYMBOL

    async def symbol_info_tick(self, symbol: str, /) -> Tick | None:
        return Tick(
            time=1,
            bid=self.b.bid,
            ask=self.b.ask,
            last=0.0,
            volume=0,
            time_msc=1000,
            flags=0,
            volume_real=0.0,
        )

    async def order_check(self, request: dict[str, Any], /) -> OrderCheckResult:
        return _zeros(OrderCheckResult, retcode=0, comment="Done", request=TradeRequest())

    async def orders_get(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradeOrder, ...]:
        if ticket is not None and symbol is None:
            return tuple(o for o in self.b.orders.values() if o.ticket == ticket)
        return tuple(o for o in self.b.orders.values() if symbol is None or o.symbol == symbol)

    async def positions_get(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradePosition, ...]:
        if ticket is not None and symbol is None:
            return tuple(p for p in self.b.positions.values() if p.ticket == ticket)
        return tuple(p for p in self.b.positions.values() if symbol is None or p.symbol == symbol)

    async def history_orders_get(
        self,
        date_from: Any = None,
        date_to: Any = None,
        /,
        *,
        group: str | None = None,
        ticket: int | None = None,
        position: int | None = None,
    ) -> tuple[TradeOrder, ...]:
        return tuple(o for o in self.b.history if ticket is None or o.ticket == ticket)

    async def history_deals_get(
        self,
        date_from: Any = None,
        date_to: Any = None,
        /,
        *,
        group: str | None = None,
        ticket: int | None = None,
        position: int | None = None,
    ) -> tuple[TradeDeal, ...]:
        return tuple(d for d in self.b.deals if ticket is None or d.order == ticket)

    async def order_send(self, request: dict[str, Any], /) -> OrderSendResult | None:
        b = self.b
        b.sends.append(dict(request))
        if b.disconnect_next:
            b.disconnect_next -= 1
            self._error = (-10004, "No IPC connection")
            return None
        if b.requote_next:
            b.requote_next -= 1
            return self._result(10004, request)
        result = self._execute(request)
        if b.lose_reply_next:
            b.lose_reply_next -= 1
            self._error = (-10002, "IPC recv failed")
            return None
        return result

    def _execute(self, request: dict[str, Any]) -> OrderSendResult:
        b = self.b
        action = request["action"]
        if action == mt5.TRADE_ACTION_REMOVE:
            order = b.orders.pop(request["order"], None)
            if order is None:
                return self._result(10013, request)
            b.history.append(order._replace(state=mt5.ORDER_STATE_CANCELED))
            return self._result(10009, request, order=order.ticket)
        order_ticket = next(b.tickets)
        base = _zeros(
            TradeOrder,
            ticket=order_ticket,
            type=request["type"],
            magic=request.get("magic", 0),
            symbol=request["symbol"],
            comment=request.get("comment", ""),
            volume_initial=request["volume"],
            volume_current=request["volume"],
            price_open=request.get("price", 0.0),
        )
        if action == mt5.TRADE_ACTION_PENDING:
            b.orders[order_ticket] = base._replace(state=mt5.ORDER_STATE_PLACED)
            return self._result(10008, request, order=order_ticket)
        price = b.ask if request["type"] == mt5.ORDER_TYPE_BUY else b.bid
        deal_ticket = next(b.tickets)
        position = request.get("position") or order_ticket
        deal = _zeros(
            TradeDeal,
            ticket=deal_ticket,
            order=order_ticket,
            time=1,
            time_msc=1000 + deal_ticket,
            type=request["type"],
            entry=mt5.DEAL_ENTRY_OUT if request.get("position") else mt5.DEAL_ENTRY_IN,
            magic=request.get("magic", 0),
            position_id=position,
            volume=request["volume"],
            price=price,
            symbol=request["symbol"],
            comment=request.get("comment", ""),
        )
        b.deals.append(deal)
        b.history.append(base._replace(state=mt5.ORDER_STATE_FILLED, position_id=position))
        if request.get("position"):
            b.positions.pop(request["position"], None)
        else:
            b.positions[order_ticket] = _zeros(
                TradePosition,
                ticket=order_ticket,
                identifier=order_ticket,
                type=request["type"],
                magic=request.get("magic", 0),
                volume=request["volume"],
                price_open=price,
                symbol=request["symbol"],
                comment=request.get("comment", ""),
            )
        return self._result(
            10009, request, order=order_ticket, deal=deal_ticket, volume=request["volume"], price=price
        )

    def _result(self, retcode: int, request: dict[str, Any], **over: Any) -> OrderSendResult:
        return _zeros(
            OrderSendResult,
            retcode=retcode,
            bid=self.b.bid,
            ask=self.b.ask,
            request=TradeRequest(**{k: v for k, v in request.items() if k in TradeRequest._fields}),
            **over,
        )
