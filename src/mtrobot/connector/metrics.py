"""Prometheus metrics of one connector, in its own registry (several connectors may share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class ConnectorMetrics:
    def __init__(self, account: str) -> None:
        self.account = account
        self.registry = CollectorRegistry()
        labels = ["account"]
        self.outcomes = Counter(
            "mtrobot_connector_orders_total",
            "orders by final or intermediate state",
            [*labels, "state"],
            registry=self.registry,
        )
        self.session_up = Gauge(
            "mtrobot_connector_session_connected",
            "1 when the broker session is up",
            labels,
            registry=self.registry,
        )
        self.broker_calls = Gauge(
            "mtrobot_connector_broker_calls", "broker calls made", labels, registry=self.registry
        )
        self.broker_failures = Gauge(
            "mtrobot_connector_broker_call_failures",
            "broker calls that failed",
            labels,
            registry=self.registry,
        )
        self.reconnects = Gauge(
            "mtrobot_connector_session_connects", "successful logins", labels, registry=self.registry
        )
        self.audit_backlog = Gauge(
            "mtrobot_connector_audit_backlog_bytes",
            "audit bytes not yet delivered",
            [*labels, "sink"],
            registry=self.registry,
        )
        self.open_orders = Gauge(
            "mtrobot_connector_open_orders", "orders not yet terminal", labels, registry=self.registry
        )

    def outcome(self, state: str) -> None:
        self.outcomes.labels(self.account, state).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
