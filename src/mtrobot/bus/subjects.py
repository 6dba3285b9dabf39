"""Every NATS subject, stream and bucket name of DESIGN.md 3.2, built in this one module."""

from __future__ import annotations

import re

from mtrobot.core.ids import is_account_id

ORDERS_STREAM = "ORDERS"
AUDIT_STREAM = "BROKER_COMMUNICATION_LOG"
DEAD_LETTER_STREAM = "ORDERS_DEAD_LETTER"
FILLS_STREAM = "FILLS"
"""Every Fill, kept so the recorder loses none while it is down (``broker.fill.>`` stays a plain subject)."""
SNAPSHOTS_BUCKET = "account_snapshots"
HUB_BUCKET = "central_hub"
REGISTRY_BUCKET = "service_registry"

SERVICE_NAME_PATTERN = r"^[a-z0-9_-]{1,64}(\.[a-z0-9_-]{1,64}){0,3}$"
"""A service name such as ``hub`` or ``connector.demo``: dotted tokens; the first names the schema."""
_SERVICE_RE = re.compile(SERVICE_NAME_PATTERN)
_INSTANCE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _account(account: str) -> str:
    if not is_account_id(account):
        raise ValueError(f"account id {account!r} is not a subject-safe token [a-z0-9_-]")
    return account


def is_service_name(name: str) -> bool:
    return bool(_SERVICE_RE.fullmatch(name))


def _service(name: str) -> str:
    if not is_service_name(name):
        raise ValueError(f"service name {name!r} is not dotted tokens of [a-z0-9_-]")
    return name


HUB_STORED_PREFIX = "hub.stored."
"""The hub bucket republishes every change it stored under this prefix, with its revision (the stream's
``Nats-Sequence``): a client follows its key by subscribing, without a consumer (agents may make none)."""


def hub_stored(service: str) -> str:
    """Where the change of ``service``'s configuration document is republished once stored."""
    return f"{HUB_STORED_PREFIX}{_service(service)}"


def bus_probe(account: str) -> str:
    """Sent once by a new agent identity so its issuer knows the platform's imports of it are live."""
    return f"bus.probe.{_account(account)}"


def hub_config_key(service: str) -> str:
    """The ``central_hub`` key holding ``service``'s configuration document."""
    return _service(service)


def portfolio_service(account: str) -> str:
    """The hub service name (and ``central_hub`` key) of an account's portfolio: ``portfolio.{account}``."""
    return f"portfolio.{_account(account)}"


def registry_key(service: str, instance_id: str) -> str:
    """The ``service_registry`` key of one running instance of ``service``."""
    if not _INSTANCE_RE.fullmatch(instance_id):
        raise ValueError(f"instance id {instance_id!r} is not a token of [A-Za-z0-9_-]")
    return f"{_service(service)}.{instance_id}"


def _token(symbol: str) -> str:
    # Symbols such as "US500.cash" contain dots; a dot would split the subject token.
    return symbol.replace(".", "~").replace("*", "_").replace(">", "_").replace(" ", "_")


def symbol_from_token(token: str) -> str:
    return token.replace("~", ".")


def orders_submitted(account: str, symbol: str) -> str:
    return f"orders.submitted.{_account(account)}.{_token(symbol)}"


def orders_submitted_filter(account: str) -> str:
    return f"orders.submitted.{_account(account)}.>"


def dead_letter_orders(account: str) -> str:
    """Where the connector keeps the account's unreadable order messages (stream ``ORDERS_DEAD_LETTER``)."""
    return f"deadletter.orders.{_account(account)}"


def broker_fill(account: str, symbol: str) -> str:
    return f"broker.fill.{_account(account)}.{_token(symbol)}"


def broker_error(account: str, symbol: str) -> str:
    return f"broker.error.{_account(account)}.{_token(symbol)}"


def broker_order(account: str, symbol: str) -> str:
    return f"broker.order.{_account(account)}.{_token(symbol)}"


def broker_fill_of(account: str) -> str:
    """Every fill of one account (what its robot host listens to)."""
    return f"broker.fill.{_account(account)}.>"


def broker_order_of(account: str) -> str:
    """Every order update of one account."""
    return f"broker.order.{_account(account)}.>"


def audit_broker(account: str) -> str:
    return f"audit.broker.{_account(account)}"


def snapshot(account: str) -> str:
    return f"snapshot.{_account(account)}"


def agent_heartbeat(account: str) -> str:
    return f"agent.heartbeat.{_account(account)}"


def agent_control(account: str) -> str:
    return f"agent.control.{_account(account)}"


def robot_event(account: str) -> str:
    """Robot and portfolio events of one account's robot host (RobotEvent), for the activity log."""
    return f"robots.event.{_account(account)}"


def reconciliation_report(account: str) -> str:
    return f"reconcile.report.{_account(account)}"


ORDERS_SUBJECTS = ["orders.submitted.>"]
AUDIT_SUBJECTS = ["audit.broker.>"]
DEAD_LETTER_SUBJECTS = ["deadletter.orders.>"]
FILLS_SUBJECTS = ["broker.fill.>"]


# Wildcards over every account, for listeners that serve all tenants (the web's activity log).
def broker_events_all() -> str:
    """Fills, errors and order updates of every account on one subscription, so they arrive in the order the
    connector published them (three subscriptions would interleave an order's fill and its update)."""
    return "broker.*.*.*"


def broker_event_kind(subject: str) -> str:
    """``fill``, ``error`` or ``order`` for a subject of :func:`broker_events_all`."""
    return subject.split(".", 2)[1]


_SENDER_TOKEN = {"broker": 2, "snapshot": 1, "robots": 2, "reconcile": 2, "agent": 2, "audit": 2}


def sender_account(subject: str) -> str | None:
    """The account an agent-owned subject belongs to (``broker.fill.A.X``, ``snapshot.A``, ...): only that
    account's agent can publish there, so a payload naming another account is a forgery."""
    tokens = subject.split(".")
    index = _SENDER_TOKEN.get(tokens[0])
    return tokens[index] if index is not None and index < len(tokens) else None


def agent_heartbeat_all() -> str:
    """Every agent's heartbeat (the supervisor's quarantine and the web's agent status)."""
    return "agent.heartbeat.*"


def snapshot_all() -> str:
    return "snapshot.*"


def robot_event_all() -> str:
    return "robots.event.*"


def reconciliation_report_all() -> str:
    return "reconcile.report.*"
