"""The order request as it arrives on ``orders.submitted.{account}.{symbol}`` (DESIGN.md 3.2)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mtrobot.core.ids import AccountId, OrderId, Symbol


class OrderAction(StrEnum):
    OPEN = "open"
    CLOSE = "close"
    MODIFY = "modify"
    CANCEL = "cancel"


class OrderType(StrEnum):
    BUY = "buy"
    SELL = "sell"
    BUY_LIMIT = "buy_limit"
    SELL_LIMIT = "sell_limit"
    BUY_STOP = "buy_stop"
    SELL_STOP = "sell_stop"
    BUY_STOP_LIMIT = "buy_stop_limit"
    SELL_STOP_LIMIT = "sell_stop_limit"

    @property
    def is_market(self) -> bool:
        return self in (OrderType.BUY, OrderType.SELL)

    @property
    def is_buy(self) -> bool:
        return self.value.startswith("buy")

    @property
    def needs_stoplimit(self) -> bool:
        return self in (OrderType.BUY_STOP_LIMIT, OrderType.SELL_STOP_LIMIT)


class Filling(StrEnum):
    FOK = "fok"
    IOC = "ioc"
    RETURN = "return"


MAX_VOLUME = 1_000_000.0
"""Lots: above any broker's volume_max; a bigger number is a mistake, refused before the broker sees it."""
VOLUME_TOLERANCE = 1e-9
"""Lots: sums of float volumes are compared with this much slack (0.01 + 0.02 is not exactly 0.03)."""
MAX_PRICE = 1e12
MAX_TICKET = 2**63 - 1
"""MT5 tickets, positions and magic numbers are signed 64-bit in the terminal's API: 2**70 cannot be sent."""


class OrderRequest(BaseModel):
    """One instruction from a robot or a trader. Unknown fields are refused, and the error names them."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    order_id: OrderId
    account: AccountId
    action: OrderAction = OrderAction.OPEN
    symbol: Symbol
    order_type: OrderType | None = None
    volume: float | None = Field(default=None, gt=0, le=MAX_VOLUME, allow_inf_nan=False, strict=True)
    price: float | None = Field(default=None, ge=0, le=MAX_PRICE, allow_inf_nan=False, strict=True)
    stoplimit: float | None = Field(default=None, ge=0, le=MAX_PRICE, allow_inf_nan=False, strict=True)
    sl: float | None = Field(default=None, ge=0, le=MAX_PRICE, allow_inf_nan=False, strict=True)
    tp: float | None = Field(default=None, ge=0, le=MAX_PRICE, allow_inf_nan=False, strict=True)
    deviation: int | None = Field(default=None, ge=0, le=100_000, strict=True)
    filling: Filling | None = None
    position: int | None = Field(default=None, gt=0, le=MAX_TICKET, strict=True)
    ticket: int | None = Field(default=None, gt=0, le=MAX_TICKET, strict=True)
    magic: int | None = Field(default=None, ge=0, le=MAX_TICKET, strict=True)
    comment: str | None = Field(default=None, max_length=64)
    robot: str | None = Field(default=None, max_length=64)
    submitted_at: datetime | None = None

    @model_validator(mode="after")
    def _fields_required_by_action(self) -> Self:
        missing = [name for name in _REQUIRED[self.action] if getattr(self, name) is None]
        if self.action is OrderAction.OPEN and self.order_type and not self.order_type.is_market:
            # 0 is MT5's "no price": a pending order at 0 is one without its price, refused here by name
            # rather than sent for the broker to answer "invalid price".
            missing += [] if self.price else ["price"]
            if self.order_type.needs_stoplimit and not self.stoplimit:
                missing.append("stoplimit")
        if missing:
            raise ValueError(f"{', '.join(missing)} required for action '{self.action.value}'")
        if self.action is OrderAction.MODIFY and self.position is None and self.ticket is None:
            raise ValueError("position or ticket required for action 'modify'")
        return self


_REQUIRED: dict[OrderAction, tuple[str, ...]] = {
    OrderAction.OPEN: ("order_type", "volume"),
    OrderAction.CLOSE: ("position",),
    OrderAction.MODIFY: (),
    OrderAction.CANCEL: ("ticket",),
}
