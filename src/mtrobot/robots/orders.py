"""From a robot's intents to OrderRequests: sizing, the pre-trade checks, ids. Nothing here publishes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import AccountInfo, TradePosition
from mtrobot.core.orders import OrderAction, OrderRequest, OrderType
from mtrobot.hub.schemas import AccountRisk
from mtrobot.robots.api import Intent, Side
from mtrobot.robots.market import MarketData
from mtrobot.robots.risk import OpenCheck, check_open, normalise_volume, size_order
from mtrobot.robots.slot import InFlight, Slot, order_id


@dataclass(frozen=True, slots=True)
class Planned:
    request: OrderRequest
    flight: InFlight
    side: Side


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


class Batch:
    """The intents of one hook call, planned in order: later opens see earlier closes and opens."""

    def __init__(
        self,
        account: str,
        slot: Slot,
        market: MarketData,
        risk: AccountRisk,
        positions: Sequence[TradePosition],
        in_flight_opens: tuple[int, int],
        *,
        now_ms: int,
        submitted_at: datetime,
    ) -> None:
        self.account, self.slot, self.market, self.risk = account, slot, market, risk
        self.positions = positions
        self.own = {p.ticket: p for p in slot.own(positions)}
        self.robot_opens, self.account_opens = in_flight_opens
        self.closing: set[int] = set()
        self.now_ms = now_ms
        self.submitted_at = submitted_at
        self._account: AccountInfo | None = None

    async def plan(self, index: int, intent: Intent) -> Planned | Refused:
        oid = order_id("r", self.slot.code, self.now_ms, index)
        if intent.action == "open":
            return await self._open(oid, intent)
        position = self.own.get(intent.position or 0)
        if position is None:
            return Refused(f"position {intent.position} is not one of this robot's open positions")
        side = Side.BUY if position.type == mt5.POSITION_TYPE_BUY else Side.SELL
        if intent.action == "close":
            volume = None
            if intent.volume is not None and self.slot.info is not None:
                volume = normalise_volume(min(intent.volume, position.volume), self.slot.info)
                if volume <= 0:
                    return Refused(f"{intent.volume:g} lots is less than the symbol's volume step")
            if volume is None or volume >= position.volume:
                self.closing.add(position.ticket)
            return Planned(
                self._request(oid, OrderAction.CLOSE, position=position.ticket, volume=volume),
                InFlight(False, position.ticket),
                side,
            )
        return Planned(
            self._request(oid, OrderAction.MODIFY, position=position.ticket, sl=intent.sl, tp=intent.tp),
            InFlight(False, position.ticket),
            side,
        )

    async def _open(self, oid: str, intent: Intent) -> Planned | Refused:
        slot, info, quote = self.slot, self.slot.info, self.slot.quote
        assert intent.side is not None
        if info is None or quote is None:
            return Refused("there is no price for the symbol yet")
        buy = intent.side is Side.BUY
        entry = quote.ask if buy else quote.bid
        account = await self._account_info()
        sizing = slot.allocation.sizing
        per_lot = None
        if sizing.mode == "equity_percent" and not intent.sl:
            per_lot = await self.market.margin(buy, info.name, 1.0, entry)
        volume = size_order(
            sizing, info, equity=account.equity, entry=entry, sl=intent.sl, margin_per_lot=per_lot
        )
        if isinstance(volume, str):
            return Refused(volume)
        check = OpenCheck(
            volume=volume,
            server_ms=self.now_ms,
            robot_positions=len(set(self.own) - self.closing) + self.robot_opens,
            account_positions=len(self.positions) - len(self.closing) + self.account_opens,
            margin_needed=await self.market.margin(buy, info.name, volume, entry),
            account=account,
        )
        reason = check_open(self.risk, slot.allocation, check)
        if reason is not None:
            return Refused(reason)
        self.robot_opens += 1
        self.account_opens += 1
        order_type = OrderType.BUY if buy else OrderType.SELL
        request = self._request(
            oid, OrderAction.OPEN, order_type=order_type, volume=volume, sl=intent.sl, tp=intent.tp
        )
        return Planned(request, InFlight(True, None), intent.side)

    async def _account_info(self) -> AccountInfo:
        if self._account is None:
            self._account = await self.market.account()
        return self._account

    def _request(
        self,
        oid: str,
        action: OrderAction,
        *,
        order_type: OrderType | None = None,
        volume: float | None = None,
        position: int | None = None,
        sl: float | None = None,
        tp: float | None = None,
    ) -> OrderRequest:
        digits = self.slot.info.digits if self.slot.info else 8
        return OrderRequest(
            order_id=oid,
            account=self.account,
            action=action,
            symbol=self.slot.allocation.symbol,
            order_type=order_type,
            volume=volume,
            position=position,
            sl=round(sl, digits) if sl and sl > 0 else None,
            tp=round(tp, digits) if tp and tp > 0 else None,
            magic=self.slot.magic,
            robot=self.slot.allocation.robot,
            submitted_at=self.submitted_at,
        )


def flatten_requests(
    account: str, code: str, positions: Sequence[TradePosition], now_ms: int, submitted_at: datetime
) -> list[OrderRequest]:
    """A close for every open position of the account (a guard's or the trader's flatten)."""
    return [
        OrderRequest(
            order_id=order_id("f", code, now_ms + index // 36, index % 36),
            account=account,
            action=OrderAction.CLOSE,
            symbol=p.symbol,
            position=p.ticket,
            magic=p.magic or None,
            robot="flatten",
            submitted_at=submitted_at,
        )
        for index, p in enumerate(positions)
    ]
