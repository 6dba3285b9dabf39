"""Outbound records (DESIGN.md 3.2): immutable, each with its own timestamp, serialised as JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mtrobot.core.ids import AccountId, Symbol
from mtrobot.core.lifecycle import OrderState


def utc_now() -> datetime:
    return datetime.now(UTC)


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorCategory(StrEnum):
    VALIDATION = "validation"
    RETRIABLE = "retriable"
    FATAL = "fatal"


class Fill(Record):
    """One deal. A partial fill gives several, each with its own ``deal``."""

    order_id: str
    account: AccountId
    symbol: Symbol
    side: str
    ticket: int
    deal: int
    position: int
    volume: float
    price: float
    requested_volume: float
    remaining_volume: float
    partial: bool
    commission: float = 0.0
    swap: float = 0.0
    profit: float = 0.0
    retcode: int
    broker_time: datetime
    latency_ms: float


class BrokerError(Record):
    order_id: str
    account: AccountId
    symbol: str
    retcode: int
    retcode_name: str
    category: ErrorCategory
    message: str
    attempts: int = 0
    ts: datetime = Field(default_factory=utc_now)


class OrderUpdate(Record):
    order_id: str
    account: AccountId
    symbol: str
    state: OrderState
    ticket: int | None = None
    filled_volume: float = 0.0
    ts: datetime = Field(default_factory=utc_now)


class AuditRecord(Record):
    ts: datetime = Field(default_factory=utc_now)
    account: AccountId
    operation: str
    order_id: str | None = None
    request: dict[str, Any] | None = None
    response: Any = None
    retcode: int | None = None
    latency_ms: float = 0.0


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    CONNECTING = "connecting"
    MAINTENANCE = "maintenance"
    BACKOFF = "backoff"
    QUARANTINED = "quarantined"
    STOPPED = "stopped"


class AccountSnapshot(Record):
    seq: int = Field(ge=0)
    ts: datetime = Field(default_factory=utc_now)
    account: AccountId
    connection: ConnectionState
    currency: str = ""
    balance: float = 0.0
    equity: float = 0.0
    margin: float = 0.0
    free_margin: float = 0.0
    margin_level: float = 0.0
    profit: float = 0.0
    positions: list[dict[str, Any]] = Field(default_factory=list)
    orders: list[dict[str, Any]] = Field(default_factory=list)
    recent_trades: list[dict[str, Any]] = Field(default_factory=list)
    robots: list[dict[str, Any]] = Field(default_factory=list)


class RobotEvent(Record):
    """Something a trader should read in the account's activity log about a robot or the portfolio: a
    robot paused (its exception, a hook past its timeout), a risk guard breached, an order refused before
    it was published, a portfolio loaded. ``robot`` is the allocation's label (``ma_cross EURUSD H1``),
    empty for the whole portfolio; ``message`` is a plain-language sentence."""

    account: AccountId
    robot: str = Field(default="", max_length=128)
    kind: str = Field(pattern=r"^[a-z_]{1,32}$")
    message: str = Field(max_length=1000)
    ts: datetime = Field(default_factory=utc_now)


class Heartbeat(Record):
    account: AccountId
    ts: datetime = Field(default_factory=utc_now)
    pid: int
    connection: ConnectionState
    uptime_s: float = 0.0
