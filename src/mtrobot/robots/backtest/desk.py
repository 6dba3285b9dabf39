"""The backtest's order path: each OrderRequest is built into an MT5 trade request the way the connector
builds it (:mod:`mtrobot.broker.trade_request`) and sent to the simulator at once. The deals and the
final state come back as the Fill and OrderUpdate records a live agent receives, handed to the host
after the tick (as they would arrive, a moment after the order was published)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.broker.retcodes import CodeInfo, Reaction, last_error_code, trade_retcode
from mtrobot.broker.structures import SymbolInfo, TradeDeal
from mtrobot.broker.trade_request import Market, build
from mtrobot.core.events import Fill, OrderUpdate
from mtrobot.core.ids import comment_tag, magic_number
from mtrobot.core.lifecycle import OrderState
from mtrobot.core.orders import OrderAction, OrderRequest
from mtrobot.robots.backtest.session import SessionCalls
from mtrobot.robots.host import RobotHost

DEFAULT_DEVIATION = 20
_DONE = (Reaction.OK, Reaction.OK_IDEMPOTENT)


@dataclass(frozen=True, slots=True)
class Rejection:
    order_id: str
    time_msc: int
    retcode: int
    retcode_name: str
    message: str


class SimOrderDesk:
    def __init__(
        self, calls: SessionCalls, account: str, info: SymbolInfo, now_ms: Callable[[], int]
    ) -> None:
        self._calls = calls
        self._account = account
        self._info = info
        self._now_ms = now_ms
        self._pending: list[Fill | OrderUpdate] = []
        self.rejections: list[Rejection] = []
        self.orders = 0

    async def submit(self, request: OrderRequest, comment: str | None = None) -> None:
        self.orders += 1
        tick = (await self._calls.call("symbol_info_tick", request.symbol)).value
        position = None
        if request.position is not None:
            found = await self._calls.call("positions_get", ticket=request.position)
            position = found.value[0] if found.ok and found.value else None
            if position is None:
                self._reject(request, trade_retcode(mt5.TRADE_RETCODE_POSITION_CLOSED))
                return
        mt5_request = build(
            request,
            Market(self._info, tick, position),
            tag=comment_tag(self._account, request.order_id),
            magic=request.magic or magic_number(self._account, request.robot),
            default_deviation=DEFAULT_DEVIATION,
        )
        if comment is not None:
            mt5_request["comment"] = comment
        sent = await self._calls.call("order_send", mt5_request)
        result = sent.value
        if result is None:
            self._reject(request, last_error_code(self._calls.last_error[0]))
            return
        if trade_retcode(result.retcode).reaction not in _DONE:
            self._reject(request, trade_retcode(result.retcode))
            return
        deals = await self._calls.call("history_deals_get", ticket=result.order) if result.order else None
        filled = 0.0
        for deal in (deals.value if deals is not None and deals.ok else None) or ():
            filled += deal.volume
            self._pending.append(self._fill(request, deal, result.retcode))
        self._update(request, OrderState.FILLED, ticket=result.order or None, filled=filled)

    def _fill(self, request: OrderRequest, deal: TradeDeal, retcode: int) -> Fill:
        requested = float(request.volume or deal.volume)
        return Fill(
            order_id=request.order_id,
            account=self._account,
            symbol=deal.symbol,
            side="buy" if deal.type == mt5.DEAL_TYPE_BUY else "sell",
            ticket=deal.order,
            deal=deal.ticket,
            position=deal.position_id,
            volume=deal.volume,
            price=deal.price,
            requested_volume=requested,
            remaining_volume=max(0.0, round(requested - deal.volume, 8)),
            partial=deal.volume + 1e-9 < requested,
            commission=deal.commission,
            swap=deal.swap,
            profit=deal.profit,
            retcode=retcode,
            broker_time=datetime.fromtimestamp(deal.time_msc / 1000, UTC),
            latency_ms=0.0,
        )

    def _reject(self, request: OrderRequest, info: CodeInfo) -> None:
        self.rejections.append(
            Rejection(request.order_id, self._now_ms(), info.code, info.name, info.message)
        )
        self._update(request, OrderState.REJECTED)

    def _update(
        self, request: OrderRequest, state: OrderState, ticket: int | None = None, filled: float = 0.0
    ) -> None:
        self._pending.append(
            OrderUpdate(
                order_id=request.order_id,
                account=self._account,
                symbol=request.symbol,
                state=state,
                ticket=ticket,
                filled_volume=filled,
                ts=datetime.fromtimestamp(self._now_ms() / 1000, UTC),
            )
        )

    async def deliver(self, host: RobotHost) -> None:
        """Hand the fills and updates of this tick's orders to the host, in the order they happened."""
        while self._pending:
            events, self._pending = self._pending, []
            for event in events:
                if isinstance(event, Fill):
                    await host.on_fill(event)
                else:
                    await host.on_order_update(event)

    async def close_everything(self, comment: str) -> None:
        """MT5's end of test: every open position closed at the last price."""
        found = await self._calls.call("positions_get")
        for index, position in enumerate(found.value or ()):
            request = OrderRequest(
                order_id=f"end-{index}",
                account=self._account,
                action=OrderAction.CLOSE,
                symbol=position.symbol,
                position=position.ticket,
                magic=position.magic or None,
                robot="backtest",
            )
            await self.submit(request, comment=comment)
        self._pending.clear()


def deal_rows(deals: Any) -> list[TradeDeal]:
    return sorted(deals or (), key=lambda d: (d.time_msc, d.ticket))
