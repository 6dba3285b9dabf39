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


class OrderRequest(BaseModel):
    """One instruction from a robot or a trader. Unknown fields are refused, and the error names them."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    order_id: OrderId
    account: AccountId
    action: OrderAction = OrderAction.OPEN
    symbol: Symbol
    order_type: OrderType | None = None
    volume: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    price: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    stoplimit: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    sl: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    tp: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    deviation: int | None = Field(default=None, ge=0, le=100_000)
    filling: Filling | None = None
    position: int | None = Field(default=None, gt=0)
    ticket: int | None = Field(default=None, gt=0)
    magic: int | None = Field(default=None, ge=0, le=2**63 - 1)
    comment: str | None = Field(default=None, max_length=64)
    robot: str | None = Field(default=None, max_length=64)
    submitted_at: datetime | None = None

    @model_validator(mode="after")
    def _fields_required_by_action(self) -> Self:
        missing = [name for name in _REQUIRED[self.action] if getattr(self, name) is None]
        if self.action is OrderAction.OPEN and self.order_type and not self.order_type.is_market:
            missing += [] if self.price is not None else ["price"]
            if self.order_type.needs_stoplimit and self.stoplimit is None:
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
