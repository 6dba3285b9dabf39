"""What a broker answer means for an order: the reaction, and the Fill records of its deals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mtrobot.broker import constants as mt5
from mtrobot.broker.retcodes import Reaction, last_error_code, trade_retcode
from mtrobot.broker.structures import OrderSendResult, TradeDeal
from mtrobot.core.events import Fill
from mtrobot.core.lifecycle import OrderState
from mtrobot.core.orders import VOLUME_TOLERANCE

from .link import CallResult


@dataclass(frozen=True, slots=True)
class Verdict:
    reaction: Reaction
    retcode: int
    name: str
    message: str


def judge(result: CallResult, operation: str = "order_send") -> Verdict:
    """Classify one broker answer (a result's retcode, or the RES_* code of a failed call)."""
    if result.error is not None:
        info = last_error_code(result.error[0])
        return Verdict(info.reaction_for(operation), info.code, info.name, info.message)
    info = trade_retcode(int(result.value.retcode))
    return Verdict(info.reaction, info.code, info.name, info.message)


ORDER_STATES: dict[int, OrderState] = {
    mt5.ORDER_STATE_FILLED: OrderState.FILLED,
    mt5.ORDER_STATE_CANCELED: OrderState.CANCELLED,
    mt5.ORDER_STATE_EXPIRED: OrderState.EXPIRED,
    mt5.ORDER_STATE_REJECTED: OrderState.REJECTED,
}
"""An MT5 order's final state in the broker's history as our lifecycle state (the one map of them)."""


def final_state(mt5_state: int | None) -> OrderState | None:
    """Our terminal state for an order the broker's history shows ended; None while it has not ended."""
    return ORDER_STATES.get(mt5_state if mt5_state is not None else -1)


def deal_side(deal_type: int) -> str:
    return "buy" if deal_type == mt5.DEAL_TYPE_BUY else "sell"


def broker_time(msc: int, seconds: int) -> datetime:
    """Server-clock epoch as a timestamp (MT5 times are the server's wall clock, labelled UTC)."""
    return datetime.fromtimestamp((msc / 1000.0) if msc else float(seconds), UTC)


def fills_from_deals(
    deals: list[TradeDeal],
    *,
    order_id: str,
    account: str,
    requested: float,
    retcode: int,
    latency_ms: float,
    already: float = 0.0,
) -> list[Fill]:
    """One Fill per trade deal, oldest first, with the volume still open after each."""
    out: list[Fill] = []
    done = already
    for deal in sorted(deals, key=lambda d: (d.time_msc, d.ticket)):
        if deal.type not in (mt5.DEAL_TYPE_BUY, mt5.DEAL_TYPE_SELL) or deal.volume <= 0:
            continue
        done += deal.volume
        remaining = max(0.0, round(requested - done, 8))
        out.append(
            Fill(
                order_id=order_id,
                account=account,
                symbol=deal.symbol,
                side=deal_side(deal.type),
                ticket=deal.order,
                deal=deal.ticket,
                position=deal.position_id,
                volume=deal.volume,
                price=deal.price,
                requested_volume=requested,
                remaining_volume=remaining,
                partial=remaining > VOLUME_TOLERANCE,
                commission=deal.commission,
                swap=deal.swap,
                profit=deal.profit,
                retcode=retcode,
                broker_time=broker_time(deal.time_msc, deal.time),
                latency_ms=round(latency_ms, 3),
            )
        )
    return out


def fill_from_result(
    result: OrderSendResult,
    *,
    order_id: str,
    account: str,
    symbol: str,
    side: str,
    requested: float,
    position: int,
    latency_ms: float,
) -> Fill:
    """When the deal history has not caught up yet, the send result itself describes the one deal."""
    remaining = max(0.0, round(requested - result.volume, 8))
    return Fill(
        order_id=order_id,
        account=account,
        symbol=symbol,
        side=side,
        ticket=result.order,
        deal=result.deal,
        position=position or result.order,
        volume=result.volume,
        price=result.price,
        requested_volume=requested,
        remaining_volume=remaining,
        partial=remaining > VOLUME_TOLERANCE,
        retcode=result.retcode,
        broker_time=datetime.now(UTC),
        latency_ms=round(latency_ms, 3),
    )
