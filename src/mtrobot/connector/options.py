"""The connector's settings: what the Central hub's ``ConnectorConfig`` says, plus local operating knobs.

The connector reads these through one :class:`OptionsHolder`; a hub change swaps the whole value at once,
so retries and timeouts change between two orders, never in the middle of a half-read configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import time
from typing import Any

from .backoff import Backoff
from .breaker import BreakerPolicy
from .intake_limit import OrderLimit
from .validation import TradingSession


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A daily window (UTC) in which the broker is down for maintenance: no login is attempted inside it."""

    start: time
    end: time
    weekdays: frozenset[int] = frozenset(range(7))

    def seconds_left(self, now_utc: Any) -> float:
        """Seconds until the window ends if ``now_utc`` is inside it, else 0."""
        session = TradingSession(self.weekdays, self.start, self.end)
        if not session.contains(now_utc):
            return 0.0
        end = now_utc.replace(
            hour=self.end.hour, minute=self.end.minute, second=self.end.second, microsecond=0
        )
        delta = float((end - now_utc).total_seconds())
        return delta if delta > 0 else delta + 86400.0


@dataclass(frozen=True, slots=True)
class ConnectorOptions:
    backend: str = "sim"
    server: str | None = None
    login: int | None = None
    terminal_options: dict[str, Any] = field(default_factory=dict)
    # order path
    validate_before_send: bool = True
    max_retries: int = 3
    retry_backoff: Backoff = field(default_factory=lambda: Backoff(0.2, 5.0))
    default_deviation: int = 20
    send_timeout_s: float = 10.0
    call_timeout_s: float = 10.0
    max_order_age_s: float = 120.0
    strict_stops: bool = True
    market_sessions: dict[str, tuple[TradingSession, ...]] = field(default_factory=dict)
    # session
    login_timeout_s: float = 30.0
    reconnect_backoff: Backoff = field(default_factory=lambda: Backoff(1.0, 60.0))
    keepalive_s: float = 10.0
    maintenance: tuple[MaintenanceWindow, ...] = ()
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    # intake and recovery
    order_limit: OrderLimit = field(default_factory=OrderLimit)
    """The account's order-rate limit (:mod:`.intake_limit`), from the settings, never from the hub."""
    ack_wait_s: float = 30.0
    take_over_at_start: bool = True
    """Rewind the ORDERS consumer at start when a previous run left messages unacknowledged (see
    docs/connector.md, "Order after a crash"); off, they come back after ``ack_wait``, held in order."""
    fetch_batch: int = 8
    unknown_settle_s: float = 30.0
    pending_poll_s: float = 2.0
    sync_interval_s: float = 300.0

    def with_changes(self, **changes: Any) -> ConnectorOptions:
        return replace(self, **changes)


def options_from_hub(config: Any, base: ConnectorOptions) -> ConnectorOptions:
    """Overlay a hub ``ConnectorConfig`` (duck-typed, so this module needs no hub import) on ``base``.

    The backend, terminal, server and login stay ``base``'s: they come from the account's record, never from
    hot-reloadable configuration (the hub's schema refuses them; DESIGN.md 4)."""
    conn, orders = config.mt5_connection, config.order_settings
    errors, sync = config.error_handling, config.position_sync
    retry_base = float(orders.retry_delay_seconds)
    reconnect_base = float(errors.reconnect_interval_seconds)
    return base.with_changes(
        login_timeout_s=float(conn.timeout_seconds),
        keepalive_s=float(conn.keepalive_interval_seconds),
        validate_before_send=bool(orders.validate_before_send),
        max_retries=int(orders.max_retries),
        retry_backoff=Backoff(retry_base, max(retry_base, retry_base * 16)),
        default_deviation=int(orders.default_deviation_points),
        send_timeout_s=float(orders.send_timeout_seconds),
        reconnect_backoff=Backoff(reconnect_base, max(reconnect_base, float(errors.max_backoff_seconds))),
        sync_interval_s=float(sync.sync_interval_minutes) * 60.0,
    )


class OptionsHolder:
    """The current options; replaced whole on a hub change."""

    def __init__(self, options: ConnectorOptions) -> None:
        self.current = options
        self.version = 0

    def replace(self, options: ConnectorOptions) -> None:
        self.current = options
        self.version += 1
