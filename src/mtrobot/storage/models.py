"""The relational schema: traders and their sessions and tokens, MT5 accounts with sealed credentials,
portfolios, orders and the per-account activity log.

Every row that belongs to a tenant carries its trader (directly or through its account), so every query can
be scoped structurally. Rows are not API schemas: the web layer maps them to its own DTOs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC time")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Trader(Base):
    __tablename__ = "traders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    password_changed_at: Mapped[datetime] = mapped_column(default=utc_now)


class WebSession(Base):
    """A browser session. Only a hash of the cookie value is stored, so a database reader cannot log in."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    trader_id: Mapped[str] = mapped_column(ForeignKey("traders.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime]
    last_seen_at: Mapped[datetime] = mapped_column(default=utc_now)


class ApiToken(Base):
    """A personal API token; the secret is shown once and only its hash is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    trader_id: Mapped[str] = mapped_column(ForeignKey("traders.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class LoginThrottle(Base):
    """Failed logins per key (an e-mail address or a client address) inside a sliding window."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(default=utc_now)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)


class Mt5Account(Base):
    """A connected MT5 account. The password exists here only sealed by the vault (AES-GCM envelope)."""

    __tablename__ = "mt5_accounts"
    __table_args__ = (UniqueConstraint("server", "login", name="uq_mt5_accounts_server_login"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    trader_id: Mapped[str] = mapped_column(ForeignKey("traders.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    server: Mapped[str] = mapped_column(String(128))
    login: Mapped[int] = mapped_column(BigInteger)
    backend: Mapped[str] = mapped_column(String(32), default="sim")
    company: Mapped[str] = mapped_column(String(128), default="")
    currency: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    tested_at: Mapped[datetime | None] = mapped_column(default=None)
    cred_key_id: Mapped[str] = mapped_column(String(32), index=True)
    cred_wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    cred_nonce: Mapped[bytes] = mapped_column(LargeBinary)
    cred_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    agent_state: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    """``active`` (the supervisor runs its agent), ``paused`` (the trader's kill switch: the agent runs with
    its trading gate closed), ``stopped`` (by a person: no agent until set active again) or ``quarantined``
    (the agent runs with its trading gate closed until a person resumes it)."""
    agent_reason: Mapped[str] = mapped_column(Text, default="", server_default="")


class Portfolio(Base):
    """The robots chosen for one account, and whether the portfolio is active."""

    __tablename__ = "portfolios"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("mt5_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    robots: Mapped[list[Any]] = mapped_column(default=list)
    risk: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class Order(Base):
    """An order request placed through the platform and its last known lifecycle state."""

    __tablename__ = "orders"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("mt5_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    order_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    action: Mapped[str] = mapped_column(String(10))
    symbol: Mapped[str] = mapped_column(String(32))
    order_type: Mapped[str | None] = mapped_column(String(20), default=None)
    volume: Mapped[float | None] = mapped_column(Float, default=None)
    price: Mapped[float | None] = mapped_column(Float, default=None)
    stoplimit: Mapped[float | None] = mapped_column(Float, default=None)
    sl: Mapped[float | None] = mapped_column(Float, default=None)
    tp: Mapped[float | None] = mapped_column(Float, default=None)
    deviation: Mapped[int | None] = mapped_column(Integer, default=None)
    filling: Mapped[str | None] = mapped_column(String(10), default=None)
    position: Mapped[int | None] = mapped_column(BigInteger, default=None)
    ticket: Mapped[int | None] = mapped_column(BigInteger, default=None)
    comment: Mapped[str | None] = mapped_column(String(64), default=None)
    parent_order_id: Mapped[str | None] = mapped_column(String(24), default=None)
    state: Mapped[str] = mapped_column(String(20), default="received")
    filled_volume: Mapped[float] = mapped_column(Float, default=0.0)
    avg_price: Mapped[float | None] = mapped_column(Float, default=None)
    """Volume-weighted price of the order's deals (from its fills, each counted once by deal)."""
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class Activity(Base):
    """One plain-language line a trader can read: order sent, filled, rejected and why, reconnects, ..."""

    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("mt5_accounts.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(default=utc_now)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    order_id: Mapped[str | None] = mapped_column(String(24), default=None)


class OrderFill(Base):
    """One deal of an order placed through the platform; the deal id makes a re-published fill harmless."""

    __tablename__ = "order_fills"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("mt5_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    deal: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(24))
    volume: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    ts: Mapped[datetime] = mapped_column(default=utc_now)


class EquityPoint(Base):
    """Balance and equity of an account over time, sampled from its snapshots (the dashboard's chart)."""

    __tablename__ = "equity_points"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("mt5_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    balance: Mapped[float] = mapped_column(Float)
    equity: Mapped[float] = mapped_column(Float)
