"""The API's data transfer objects, per resource: ``XCreate`` comes in, ``XPublic`` goes out.

No ``XPublic`` has a field for a password, a password hash, a token hash or a sealed credential, so a
route cannot leak one by returning a row: the rows are mapped to these models explicitly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from mtrobot.core.ids import ORDER_ID_PATTERN, SYMBOL_PATTERN
from mtrobot.core.orders import Filling, OrderType
from mtrobot.hub.schemas import AccountRisk, Allocation, PortfolioConfig

# ASCII only: a JSON-schema pattern and Python's re must agree on every character class used here.
EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
Email = Annotated[str, StringConstraints(max_length=254, pattern=EMAIL_PATTERN)]
Name = Annotated[str, StringConstraints(max_length=100)]
Password = Annotated[SecretStr, Field(min_length=10, max_length=256)]
SymbolStr = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)]
OrderIdStr = Annotated[str, StringConstraints(pattern=ORDER_ID_PATTERN)]
# strict: a JSON number only ("0.01" and true are refused naming the field, never read as 0.01 or 1 lot)
Price = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False, strict=True)]
Volume = Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False, strict=True)]
Deviation = Annotated[int, Field(ge=0, le=100_000, strict=True)]
Scope = Literal["read", "trade"]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- traders and sessions --------------------------------------------------------------------------------


class TraderCreate(In):
    email: Email
    password: Password = Field(description="at least 10 characters")
    name: Name = ""


class LoginRequest(In):
    email: Email
    password: Annotated[SecretStr, Field(min_length=1, max_length=256)]


class PasswordChange(In):
    current_password: Annotated[SecretStr, Field(min_length=1, max_length=256)]
    new_password: Password


class TraderPublic(Out):
    id: str
    email: str
    name: str
    created_at: datetime


class SessionPublic(BaseModel):
    trader: TraderPublic
    csrf_token: str = Field(description="send it back as the X-CSRF-Token header on every browser write")
    expires_at: datetime


# --- API tokens ------------------------------------------------------------------------------------------


class TokenCreate(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    scope: Scope = "read"


class TokenPublic(Out):
    id: str
    name: str
    scope: Scope
    created_at: datetime
    last_used_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret, shown this once; send it as 'Authorization: Bearer ...'")


# --- broker servers and MT5 accounts ---------------------------------------------------------------------


class ServerPublic(BaseModel):
    name: str
    company: str
    simulated: bool


class AccountDraft(In):
    """A connect form as typed so far: each present field is validated, absent ones are not."""

    server: str | None = Field(default=None, max_length=256)
    login: str | int | None = None
    password: SecretStr | None = Field(default=None, max_length=256)


class FieldCheck(BaseModel):
    valid: bool
    message: str = ""


class DraftCheck(BaseModel):
    valid: bool = Field(description="every given field is valid and server, login and password are all given")
    fields: dict[str, FieldCheck]


class AccountCreate(In):
    server: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    login: Annotated[int, Field(gt=0, lt=2**63)]
    password: Annotated[SecretStr, Field(min_length=1, max_length=256)]
    label: Name = ""


class AccountPublic(Out):
    id: str
    label: str
    server: str
    login: int
    company: str
    currency: str
    created_at: datetime
    tested_at: datetime | None


class ConnectionTest(BaseModel):
    ok: bool
    code: str = Field(
        description="ok, wrong_password, unknown_server, investor_password, trading_disabled, ..."
    )
    message: str
    field: str | None = None


# --- portfolio and robots ------------------------------------------------------------------------------


class PortfolioUpdate(PortfolioConfig):
    """The whole portfolio, as the hub stores it (``PortfolioConfig``); ``active`` must be given."""

    active: bool


class PortfolioPublic(BaseModel):
    account_id: str
    active: bool
    robots: list[Allocation]
    risk: AccountRisk
    updated_at: datetime
    hub_revision: int | None = Field(
        default=None,
        description="revision of portfolio.{account} in the hub; null if the hub could not be reached "
        "(the agent then picks the portfolio up when it next starts)",
    )


class ParameterPublic(BaseModel):
    name: str
    type: Literal["int", "float", "bool", "choice", "text"]
    default: Any
    minimum: float | None
    maximum: float | None
    exclusive_minimum: bool
    exclusive_maximum: bool
    choices: list[Any]
    description: str


class RobotPublic(BaseModel):
    name: str
    description: str
    details: str
    source: str = Field(description="builtin, entry point NAME or file PATH")
    parameters: list[ParameterPublic]


# --- orders and positions ---------------------------------------------------------------------------------


class OrderCreate(In):
    order_id: OrderIdStr | None = Field(
        default=None, description="your id for safe retries; generated if absent"
    )
    symbol: SymbolStr
    order_type: OrderType
    volume: Volume
    price: Price | None = None
    stoplimit: Price | None = None
    sl: Price | None = None
    tp: Price | None = None
    deviation: Deviation | None = None
    filling: Filling | None = None
    comment: Annotated[str, StringConstraints(max_length=64, pattern=r"^[\x20-\x7e]*$")] | None = None


class OrderModify(In):
    order_id: OrderIdStr | None = None
    price: Price | None = None
    stoplimit: Price | None = None
    sl: Price | None = None
    tp: Price | None = None


class PositionModify(In):
    order_id: OrderIdStr | None = None
    symbol: SymbolStr | None = Field(default=None, description="the position's symbol, if known")
    sl: Price | None = None
    tp: Price | None = None


class PositionClose(In):
    order_id: OrderIdStr | None = None
    symbol: SymbolStr | None = Field(default=None, description="the position's symbol, if known")
    volume: Volume | None = Field(default=None, description="lots to close; the whole position if absent")
    deviation: Deviation | None = None


class OrderPublic(Out):
    order_id: str
    account_id: str
    action: str
    symbol: str
    order_type: str | None
    volume: float | None
    price: float | None
    stoplimit: float | None
    sl: float | None
    tp: float | None
    position: int | None
    ticket: int | None
    parent_order_id: str | None
    state: str
    filled_volume: float
    avg_price: float | None = Field(
        description="volume-weighted price of the order's deals; null before a fill"
    )
    reason: str
    created_at: datetime
    updated_at: datetime


class PositionsPublic(BaseModel):
    account_id: str
    as_of: datetime | None = Field(description="time of the agent's latest snapshot; null if none yet")
    positions: list[dict[str, Any]]
    orders: list[dict[str, Any]]


class AgentStatus(BaseModel):
    account_id: str
    connection: str = Field(
        description="connected, connecting, maintenance, backoff, quarantined, stopped, unknown"
    )
    seq: int | None = None
    as_of: datetime | None = None
    currency: str = ""
    balance: float | None = None
    equity: float | None = None
    margin_level: float | None = None
    robots: list[dict[str, Any]] = Field(default_factory=list)
    state: str = Field(
        default="not running",
        description="the agent's state from its heartbeat: starting, running, paused, quarantined, stopping, "
        "or 'not running' (no heartbeat for 15 s)",
    )
    agent_state: str = Field(default="active", description="recorded: active, paused, stopped, quarantined")
    reason: str = Field(default="", description="why it is paused or quarantined, in plain words")
    heartbeat_at: datetime | None = None
    heartbeat_age_s: float | None = None
    pid: int | None = None
    rss_mb: float | None = None
    cpu_pct: float | None = None
    orders_per_min: float | None = None


class EquityPointPublic(Out):
    ts: datetime
    balance: float
    equity: float


class ActivityPublic(Out):
    id: int
    ts: datetime
    kind: str
    message: str
    order_id: str | None


# --- simulated demo accounts (the embedded platform) ------------------------------------------------------


class DemoAccountCreate(In):
    """A simulated demo account, opened at the platform's simulator as MT5's own terminal offers."""

    model_config = ConfigDict(extra="forbid", strict=True)  # "1000" is not a number

    server: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        default=None, description="a simulated server from /brokers/servers; the first one if absent"
    )
    deposit: Annotated[float, Field(ge=100, le=10_000_000, allow_inf_nan=False)] = Field(
        default=10_000.0, description="starting balance in USD"
    )
    leverage: Annotated[int, Field(ge=1, le=1000)] = 100
    label: Name = ""
