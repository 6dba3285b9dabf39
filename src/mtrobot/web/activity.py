"""Broker events become order states and one plain-language activity line per thing a trader cares about.

The web listens (in a queue group, so several web processes share the work and each event is handled
once) to the connector's ``broker.order`` / ``broker.fill`` / ``broker.error`` events, the reconciliation
reports and the agents' snapshots (only their connection state, to log reconnects and maintenance).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from mtrobot.bus import subjects
from mtrobot.bus.codec import decode
from mtrobot.core.events import AccountSnapshot, BrokerError, ConnectionState, Fill, OrderUpdate, RobotEvent
from mtrobot.core.lifecycle import OrderState, follow
from mtrobot.logging import get_logger
from mtrobot.storage import accounts as account_repo
from mtrobot.storage import orders as order_repo
from mtrobot.storage.models import utc_now

log = get_logger(__name__)

QUEUE_GROUP = "mtrobot-web-activity"
EQUITY_SAMPLE = timedelta(minutes=1)

_STATE_WORDS = {
    OrderState.SENT: "sent to the broker",
    OrderState.ACCEPTED: "accepted by the broker",
    OrderState.CANCELLED: "cancelled",
    OrderState.EXPIRED: "expired",
    OrderState.DUPLICATE: "ignored: an order with this id was already handled",
    OrderState.UNKNOWN: "sent, but the broker's answer was lost; checking whether it executed",
}

_CONNECTION_WORDS = {
    ConnectionState.CONNECTED: ("reconnect", "Connected to the broker."),
    ConnectionState.MAINTENANCE: (
        "maintenance",
        "The broker is in its maintenance window; trading resumes after it.",
    ),
    ConnectionState.BACKOFF: ("reconnect", "Lost the connection to the broker; reconnecting."),
    ConnectionState.QUARANTINED: ("quarantine", "The account's agent was stopped after repeated failures."),
    ConnectionState.STOPPED: ("stopped", "The account's agent stopped."),
}


def describe_update(update: OrderUpdate) -> tuple[str, str] | None:
    words = _STATE_WORDS.get(update.state)
    if words is None:
        return None  # received/validated are internal; fills and rejections have their own lines
    return "order", f"Order {update.order_id} ({update.symbol}) {words}."


def describe_fill(fill: Fill) -> tuple[str, str]:
    what = "Partly filled" if fill.partial else "Filled"
    rest = f", {fill.remaining_volume:g} lots still open" if fill.partial else ""
    return "fill", (
        f"{what}: {fill.side} {fill.volume:g} lots {fill.symbol} at {fill.price:g} "
        f"(order {fill.order_id}, deal {fill.deal}{rest})."
    )


def describe_error(error: BrokerError) -> tuple[str, str]:
    return "rejected", f"Order {error.order_id} ({error.symbol}) was not executed: {error.message}"


_DIFFERENCE_WORDS = {
    "missing": "position {position} ({symbol}) is no longer open at the broker",
    "extra": "position {position} ({symbol}) is open at the broker but was unknown here",
    "volume_mismatch": "position {position} ({symbol}) is {broker_volume} lots at the broker, "
    "{platform_volume} here",
    "outside_platform": "position {position} ({symbol}) was opened outside the platform",
    "order_missing": "pending order {ticket} ({symbol}) is no longer at the broker",
    "order_resolved": "order {order_id} ({symbol}) was resolved from the broker's records",
}
_DIFFERENCE_FIELDS = ("position", "symbol", "ticket", "order_id", "broker_volume", "platform_volume")
MAX_DIFFERENCE_LINES = 10


def describe_reconciliation(report: dict[str, Any]) -> list[tuple[str, str]]:
    """One line per difference the reconciliation found (at most ten, then a summary)."""
    differences = [d for d in report.get("differences") or [] if isinstance(d, dict)]
    lines = []
    for diff in differences[:MAX_DIFFERENCE_LINES]:
        template = _DIFFERENCE_WORDS.get(str(diff.get("kind")), "{symbol}: the broker's records differed")
        values = {k: "?" if diff.get(k) is None else diff[k] for k in _DIFFERENCE_FIELDS}
        text = template.format(**values)
        detail = f" ({diff['detail']})" if diff.get("detail") else ""
        lines.append(("reconciliation", f"Reconciliation: {text}{detail}; the broker's view was adopted."))
    if len(differences) > MAX_DIFFERENCE_LINES:
        more = len(differences) - MAX_DIFFERENCE_LINES
        lines.append(
            ("reconciliation", f"Reconciliation: {more} more differences with the broker were adopted.")
        )
    return lines


class ActivityRecorder:
    """Applies events to the database; synchronous, called from a worker thread."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._connection: dict[str, ConnectionState] = {}
        self._sampled: dict[str, tuple[datetime, float]] = {}

    def on_update(self, update: OrderUpdate) -> None:
        """Follow the connector's state (the one source of truth); an echo changes nothing, logs nothing."""
        with self._sessions.begin() as db:
            if account_repo.account_by_id(db, update.account) is None:
                return
            order = order_repo.order_of(db, update.account, update.order_id)
            if order is not None:
                target = follow(OrderState(order.state), update.state)
                order.ticket = update.ticket or order.ticket
                order.filled_volume = max(order.filled_volume, update.filled_volume)
                if target is None:
                    return
                order.state = target.value
                order.updated_at = utc_now()
            line = describe_update(update)
            if line is not None:
                order_repo.log_activity(db, update.account, line[0], line[1], update.order_id)

    def on_fill(self, fill: Fill) -> None:
        """Each deal counts once (by deal id) towards the order's average price and the activity log."""
        with self._sessions.begin() as db:
            if account_repo.account_by_id(db, fill.account) is None:
                return
            order = order_repo.order_of(db, fill.account, fill.order_id)
            if order is not None:
                order.ticket = order.ticket or fill.ticket
                order.position = order.position or fill.position
                if not order_repo.add_fill(db, order, fill.deal, fill.volume, fill.price):
                    return
                order.updated_at = utc_now()
            kind, message = describe_fill(fill)
            order_repo.log_activity(db, fill.account, kind, message, fill.order_id)

    def on_error(self, error: BrokerError) -> None:
        with self._sessions.begin() as db:
            if account_repo.account_by_id(db, error.account) is None:
                return
            order = order_repo.order_of(db, error.account, error.order_id)
            if order is not None:
                order.reason = error.message
                order.updated_at = utc_now()
            kind, message = describe_error(error)
            order_repo.log_activity(db, error.account, kind, message, error.order_id)

    def on_snapshot(self, snapshot: AccountSnapshot) -> None:
        self._sample_equity(snapshot)
        lines: list[tuple[str, str]] = []
        before = self._connection.get(snapshot.account)
        self._connection[snapshot.account] = snapshot.connection
        words = _CONNECTION_WORDS.get(snapshot.connection)
        if before is not None and before != snapshot.connection and words is not None:
            lines.append(words)
        if not lines:
            return
        with self._sessions.begin() as db:
            if account_repo.account_by_id(db, snapshot.account) is not None:
                for kind, message in lines:
                    order_repo.log_activity(db, snapshot.account, kind, message)

    def _sample_equity(self, snapshot: AccountSnapshot) -> None:
        """One equity point a minute per account, and one at every balance change (a closed trade)."""
        if snapshot.connection is not ConnectionState.CONNECTED or not snapshot.equity:
            return
        last = self._sampled.get(snapshot.account)
        if last is not None and snapshot.ts - last[0] < EQUITY_SAMPLE and snapshot.balance == last[1]:
            return
        self._sampled[snapshot.account] = (snapshot.ts, snapshot.balance)
        with self._sessions.begin() as db:
            if account_repo.account_by_id(db, snapshot.account) is not None:
                order_repo.add_equity_point(
                    db, snapshot.account, snapshot.ts, snapshot.balance, snapshot.equity
                )

    def on_robot_event(self, event: RobotEvent) -> None:
        """A robot host's line (a robot paused, an order refused by risk, a guard fired) as it was said;
        robot lines come from these events only, not from snapshot changes (which would say them twice)."""
        with self._sessions.begin() as db:
            if account_repo.account_by_id(db, event.account) is not None:
                order_repo.log_activity(db, event.account, "robot", event.message)

    def on_reconciliation(self, account: str, report: dict[str, Any]) -> None:
        lines = describe_reconciliation(report)
        if not lines:
            return
        with self._sessions.begin() as db:
            if account_repo.account_by_id(db, account) is not None:
                for kind, message in lines:
                    order_repo.log_activity(db, account, kind, message)


async def listen(nc: Client, recorder: ActivityRecorder) -> list[Any]:
    """Subscribe the recorder to every account's events; returns the subscriptions (to unsubscribe).

    Each subscription's messages are handled one at a time, in order: broker events share one subscription
    so an order's update, fill and error are applied in the order the connector published them.
    """
    broker_events: dict[str, tuple[type[Any], Any]] = {
        "order": (OrderUpdate, recorder.on_update),
        "fill": (Fill, recorder.on_fill),
        "error": (BrokerError, recorder.on_error),
    }

    async def apply(model: type[Any], action: Any, msg: Msg) -> None:
        try:
            event = decode(model, msg.data)
        except ValidationError:
            log.warning("unreadable broker event", subject=msg.subject)
            return
        if event.account != subjects.sender_account(msg.subject):
            # Only an account's agent publishes on its subjects: it cannot speak for another account.
            log.warning("event for another account refused", subject=msg.subject)
            return
        try:
            await asyncio.to_thread(action, event)
        except Exception as exc:
            log.error("could not record broker event", subject=msg.subject, error=repr(exc))

    async def on_broker_event(msg: Msg) -> None:
        known = broker_events.get(subjects.broker_event_kind(msg.subject))
        if known is not None:
            await apply(*known, msg)

    async def on_snapshot(msg: Msg) -> None:
        await apply(AccountSnapshot, recorder.on_snapshot, msg)

    async def on_robot_event(msg: Msg) -> None:
        await apply(RobotEvent, recorder.on_robot_event, msg)

    async def on_report(msg: Msg) -> None:
        try:
            report = json.loads(msg.data)
            account = str(report.get("account", ""))
        except (ValueError, AttributeError):
            return
        if account != subjects.sender_account(msg.subject):
            log.warning("report for another account refused", subject=msg.subject)
            return
        await asyncio.to_thread(recorder.on_reconciliation, account, report)

    wanted = [
        (subjects.broker_events_all(), on_broker_event),
        (subjects.snapshot_all(), on_snapshot),
        (subjects.robot_event_all(), on_robot_event),
        (subjects.reconciliation_report_all(), on_report),
    ]
    return [await nc.subscribe(subject, queue=QUEUE_GROUP, cb=cb) for subject, cb in wanted]
