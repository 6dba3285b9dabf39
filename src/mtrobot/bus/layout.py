"""Who may do what on the bus: the permission set of every identity and the wiring between NATS accounts.

This module is pure data (no I/O), so a test can assert every identity's permissions exactly and a later
widening fails it. The layout (DESIGN.md 3.2, bus identity):

- One NATS account for the platform (``PLATFORM``): the streams, the KV buckets, one user per service
  (web, hub, recorder, supervisor, launcher) and the operator's ``admin`` user.
- One NATS account per agent (``agent-{account}``), with JetStream off. It exports what the agent
  publishes (its ``broker.*``, ``snapshot``, ``agent.heartbeat``, ``robots.event``, ``reconcile.report``
  subjects, and its ``agent.control`` service) and imports from the platform only its own pull consumer
  (info, next, ack), its own order, audit and dead-letter subjects and its own ``account_snapshots`` key.
  A subject the agent names that is not one of those (as a publish or as a *reply* subject) exists only in
  its own account and reaches nobody.
- The platform imports each agent's exports under the same names, so the web reads ``broker.*.{account}``
  as published by that account's agent only: no platform user may publish on the agent-owned subjects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mtrobot.bus import subjects
from mtrobot.core.ids import is_account_id

PLATFORM_ACCOUNT = "PLATFORM"
SYSTEM_ACCOUNT = "SYS"
SERVICES = ("web", "hub", "recorder", "supervisor", "launcher")
ADMIN = "admin"

UNLIMITED = -1
_JS_API = ("$JS.API.>", "$JS.ACK.>", "$JS.FC.>")


def agent_account_name(account: str) -> str:
    return f"agent-{account}"


def inbox_prefix(identity: str) -> str:
    """A private inbox per identity: allowing ``_INBOX.>`` would let anyone read everyone's replies."""
    return f"_INBOX_{identity.replace('.', '_')}"


def agent_inbox_prefix(account: str) -> str:
    return inbox_prefix(f"agent_{_acc(account)}")


def agent_consumer(account: str) -> str:
    """The durable ORDERS consumer of one account (created by the supervisor, never by the agent)."""
    return f"connector_{_acc(account)}"


def order_consumer_reset(account: str) -> str:
    """Rewinds the account's ORDERS consumer to its ack floor: what a killed run fetched and never
    acknowledged is delivered again at once, in stream order (nats-server 2.14+), instead of after
    ``ack_wait``. It touches that one consumer only, and can only make the agent see its own orders again."""
    return f"$JS.API.CONSUMER.RESET.{subjects.ORDERS_STREAM}.{agent_consumer(account)}"


def dead_letter(account: str) -> str:
    return subjects.dead_letter_orders(account)


# -- what an agent publishes (its account exports it, the platform imports it) ----------------------


def agent_outbound(account: str) -> tuple[str, ...]:
    """Subjects only this account's agent may originate; the platform imports them from its account."""
    return (
        f"broker.*.{_acc(account)}.>",
        subjects.snapshot(account),
        subjects.agent_heartbeat(account),
        subjects.robot_event(account),
        subjects.reconciliation_report(account),
        subjects.bus_probe(account),
    )


def agent_hub_keys(account: str) -> tuple[str, ...]:
    """The ``central_hub`` keys an agent follows: its connector's and its portfolio's configuration."""
    return (f"connector.{_acc(account)}", subjects.portfolio_service(account))


def agent_streams_from_platform(account: str) -> tuple[str, ...]:
    """What an agent receives from the platform without asking: its hub keys' stored changes."""
    return tuple(subjects.hub_stored(key) for key in agent_hub_keys(account))


def agent_services_to_platform(account: str) -> tuple[str, ...]:
    """Request/reply services the agent answers: the platform's requests reach it through these."""
    return (subjects.agent_control(account),)


def agent_imports_from_platform(account: str) -> tuple[tuple[str, str], ...]:
    """(subject, response type) of every platform service an agent may call: all of them its own."""
    durable = agent_consumer(account)
    return (
        (f"$JS.API.CONSUMER.INFO.{subjects.ORDERS_STREAM}.{durable}", "Singleton"),
        (f"$JS.API.CONSUMER.MSG.NEXT.{subjects.ORDERS_STREAM}.{durable}", "Stream"),
        (f"$JS.ACK.{subjects.ORDERS_STREAM}.{durable}.>", "Singleton"),
        (order_consumer_reset(account), "Singleton"),
        (subjects.orders_submitted_filter(account), "Singleton"),
        (subjects.audit_broker(account), "Singleton"),
        (dead_letter(account), "Singleton"),
        (f"$KV.{subjects.SNAPSHOTS_BUCKET}.{_acc(account)}", "Singleton"),
        (_direct_get(subjects.SNAPSHOTS_BUCKET, _acc(account)), "Singleton"),
        *((_direct_get(subjects.HUB_BUCKET, key), "Singleton") for key in agent_hub_keys(account)),
        (f"$KV.{subjects.REGISTRY_BUCKET}.connector.{_acc(account)}.*", "Singleton"),
    )


def _direct_get(bucket: str, key: str) -> str:
    return f"$JS.API.DIRECT.GET.KV_{bucket}.$KV.{bucket}.{key}"


def platform_exports() -> tuple[tuple[str, str], ...]:
    """The platform's service exports, wildcards over accounts; each agent imports only its own subset."""
    orders = subjects.ORDERS_STREAM
    return (
        (f"$JS.API.CONSUMER.INFO.{orders}.*", "Singleton"),
        (f"$JS.API.CONSUMER.MSG.NEXT.{orders}.*", "Stream"),
        (f"$JS.ACK.{orders}.*.>", "Singleton"),
        (f"$JS.API.CONSUMER.RESET.{orders}.*", "Singleton"),
        ("orders.submitted.*.>", "Singleton"),
        ("audit.broker.*", "Singleton"),
        ("deadletter.orders.*", "Singleton"),
        (f"$KV.{subjects.SNAPSHOTS_BUCKET}.*", "Singleton"),
        (_direct_get(subjects.SNAPSHOTS_BUCKET, "*"), "Singleton"),
        (_direct_get(subjects.HUB_BUCKET, "*.*"), "Singleton"),
        (f"$KV.{subjects.REGISTRY_BUCKET}.connector.*.*", "Singleton"),
    )


def platform_stream_exports() -> tuple[str, ...]:
    """The platform's stream exports (each agent imports its own keys' subjects)."""
    return (f"{subjects.HUB_STORED_PREFIX}*.*",)


def _acc(account: str) -> str:
    if not is_account_id(account):
        raise ValueError(f"account id {account!r} is not a subject-safe token [a-z0-9_-]")
    return account


# -- permissions of users -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Permissions:
    pub_allow: tuple[str, ...] = ()
    pub_deny: tuple[str, ...] = ()
    sub_allow: tuple[str, ...] = ()
    sub_deny: tuple[str, ...] = ()
    responses: bool = False
    """May answer requests it received (publish once to each reply subject), nothing more."""

    def claims(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pub": _allow_deny(self.pub_allow, self.pub_deny),
            "sub": _allow_deny(self.sub_allow, self.sub_deny),
        }
        if self.responses:
            out["resp"] = {"max": 1, "ttl": 0}
        return out


def _allow_deny(allow: tuple[str, ...], deny: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if allow:
        out["allow"] = list(allow)
    if deny:
        out["deny"] = list(deny)
    return out


# Subjects no platform user may publish: they are the agents' word (fills, audit, snapshots, heartbeats).
AGENT_OWNED = (
    "broker.>",
    "audit.broker.>",
    "snapshot.>",
    "agent.heartbeat.>",
    "robots.event.>",
    "reconcile.report.>",
    "bus.probe.>",
    f"$KV.{subjects.SNAPSHOTS_BUCKET}.>",
)

_REGISTRY = f"$KV.{subjects.REGISTRY_BUCKET}.>"
_PROBES = "bus.probe.*"  # who issues agents' identities sees each new one's probe (BusAuthority)
_HUB = f"$KV.{subjects.HUB_BUCKET}.>"


def service_permissions(service: str) -> Permissions:
    """The permission set of one platform service's user (``SERVICES``)."""
    inbox = f"{inbox_prefix(service)}.>"
    table: dict[str, Permissions] = {
        # Pages and API: places orders, reads snapshots and every account's events, asks agents (control).
        "web": Permissions(
            pub_allow=(*_JS_API, _HUB, _REGISTRY, "orders.submitted.>", "agent.control.*"),
            pub_deny=AGENT_OWNED,
            sub_allow=(
                inbox,
                "broker.*.*.*",
                "snapshot.*",
                "robots.event.*",
                "reconcile.report.*",
                "agent.heartbeat.*",
            ),
        ),
        # Central configuration: the central_hub bucket and the registry, nothing of the accounts.
        "hub": Permissions(
            pub_allow=(*_JS_API, _HUB, _REGISTRY),
            pub_deny=AGENT_OWNED,
            sub_allow=(inbox,),
        ),
        # Executions and the Kafka mirror: reads fills and the audit stream through its own consumers.
        "recorder": Permissions(
            pub_allow=(*_JS_API, _REGISTRY),
            pub_deny=AGENT_OWNED,
            sub_allow=(inbox, "broker.*.*.*", "audit.broker.*"),
        ),
        # Agents' keeper: creates their consumers, watches heartbeats, sends control requests.
        "supervisor": Permissions(
            pub_allow=(*_JS_API, _HUB, _REGISTRY, "agent.control.*"),
            pub_deny=AGENT_OWNED,
            # Order floods are counted as orders arrive (quarantine).
            sub_allow=(
                inbox,
                "agent.heartbeat.*",
                "snapshot.*",
                "robots.event.*",
                "orders.submitted.>",
                _PROBES,
            ),
        ),
        # `mtrobot up`: provisions streams and buckets.
        "launcher": Permissions(
            pub_allow=(*_JS_API, _HUB, _REGISTRY),
            pub_deny=AGENT_OWNED,
            sub_allow=(inbox, _PROBES),
        ),
    }
    if service == ADMIN:
        # The operator: sees everything in the platform account (DESIGN 3.2); even it cannot speak for an
        # agent, so a fill or snapshot the web shows came from that account's agent.
        return Permissions(pub_allow=(">",), pub_deny=AGENT_OWNED, sub_allow=(">",), responses=True)
    if service not in table:
        raise ValueError(f"no bus identity for service {service!r}; known: {', '.join(SERVICES)}")
    return table[service]


def agent_permissions(account: str) -> Permissions:
    """The agent's user inside its own account: only its own subjects, its inbox, answering control."""
    return Permissions(
        # Checked after the account's mappings, so on the local names of the JetStream API imports.
        pub_allow=(*(_local(s) for s, _ in agent_imports_from_platform(account)), *agent_outbound(account)),
        sub_allow=(
            f"{agent_inbox_prefix(account)}.>",
            subjects.agent_control(account),
            f"broker.*.{_acc(account)}.>",
            *agent_streams_from_platform(account),
        ),
        responses=True,
    )


def _agent_jetstream_api(account: str) -> tuple[str, ...]:
    """The JetStream API calls an agent makes, named one by one: no stream management (a stream's
    republish or a mirror could write anywhere), no consumer but its hub watches (the supervisor makes its
    ORDERS consumer), reads of its own snapshot key only."""
    hub = f"KV_{subjects.HUB_BUCKET}"
    durable = agent_consumer(account)
    return (
        "$JS.API.INFO",
        f"$JS.API.STREAM.INFO.{subjects.ORDERS_STREAM}",
        f"$JS.API.STREAM.INFO.{subjects.AUDIT_STREAM}",
        f"$JS.API.STREAM.INFO.{subjects.DEAD_LETTER_STREAM}",
        f"$JS.API.STREAM.INFO.{subjects.FILLS_STREAM}",
        f"$JS.API.STREAM.INFO.{hub}",
        f"$JS.API.STREAM.INFO.KV_{subjects.REGISTRY_BUCKET}",
        f"$JS.API.CONSUMER.INFO.{subjects.ORDERS_STREAM}.{durable}",
        f"$JS.API.CONSUMER.MSG.NEXT.{subjects.ORDERS_STREAM}.{durable}",
        f"$JS.ACK.{subjects.ORDERS_STREAM}.{durable}.>",
        order_consumer_reset(account),
        # Its configuration (central_hub, hot reload): ordered consumers of the hub bucket.
        f"$JS.API.CONSUMER.CREATE.{hub}",
        f"$JS.API.CONSUMER.CREATE.{hub}.>",
        f"$JS.API.CONSUMER.INFO.{hub}.*",
        f"$JS.API.CONSUMER.DELETE.{hub}.*",
        f"$JS.API.DIRECT.GET.{hub}.>",
        f"$JS.API.STREAM.MSG.GET.{hub}",
        f"$JS.FC.{hub}.>",
        f"$JS.API.STREAM.INFO.KV_{subjects.SNAPSHOTS_BUCKET}",
        _direct_get(subjects.SNAPSHOTS_BUCKET, _acc(account)),
    )


def platform_agent_permissions(account: str) -> Permissions:
    """The weaker, transitional layout (no longer used by `mtrobot up`): an agent's user in the platform
    account, limited to its own subjects, its inbox and the JetStream calls it makes. A consumer of the hub
    bucket can still be aimed anywhere and a reply subject can name any subject (docs/security.md)."""
    return Permissions(
        pub_allow=(
            *_agent_jetstream_api(account),
            f"$KV.{subjects.REGISTRY_BUCKET}.connector.{_acc(account)}.*",
            f"$KV.{subjects.SNAPSHOTS_BUCKET}.{_acc(account)}",
            subjects.orders_submitted_filter(account),
            subjects.audit_broker(account),
            dead_letter(account),
            *agent_outbound(account),
        ),
        sub_allow=(
            f"{agent_inbox_prefix(account)}.>",
            subjects.agent_control(account),
            f"broker.*.{_acc(account)}.>",
        ),
        responses=True,
    )


# -- account claims -----------------------------------------------------------------------------------


def _limits(jetstream: bool) -> dict[str, Any]:
    limits: dict[str, Any] = {
        "subs": UNLIMITED,
        "data": UNLIMITED,
        "payload": UNLIMITED,
        "imports": UNLIMITED,
        "exports": UNLIMITED,
        "wildcards": True,
        "conn": UNLIMITED,
        "leaf": 0,
    }
    if jetstream:  # JetStream is off in an account unless its storage limits say otherwise
        limits |= {"mem_storage": UNLIMITED, "disk_storage": UNLIMITED, "streams": UNLIMITED}
        limits |= {"consumer": UNLIMITED}
    else:
        limits |= {"mem_storage": 0, "disk_storage": 0, "streams": 0, "consumer": 0}
    return limits


@dataclass(frozen=True)
class AccountWiring:
    exports: list[dict[str, Any]] = field(default_factory=list)
    imports: list[dict[str, Any]] = field(default_factory=list)
    mappings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def platform_wiring(agents: dict[str, str]) -> AccountWiring:
    """The platform's exports and its imports of every agent's subjects (``agents``: account -> its key)."""
    exports = [
        {"name": subject, "subject": subject, "type": "service", "response_type": kind}
        for subject, kind in platform_exports()
    ]
    exports += [
        {"name": subject, "subject": subject, "type": "stream"} for subject in platform_stream_exports()
    ]
    imports: list[dict[str, Any]] = []
    for account, public in sorted(agents.items()):
        imports += [
            {"name": subject, "subject": subject, "account": public, "type": "stream"}
            for subject in agent_outbound(account)
        ]
        imports += [
            {"name": subject, "subject": subject, "account": public, "type": "service"}
            for subject in agent_services_to_platform(account)
        ]
    return AccountWiring(exports, imports)


# An account without JetStream answers ``$JS.API.>`` itself ("JetStream not enabled"), before any import:
# the agent's JetStream API calls are mapped to this local name first, and imported under it.
AGENT_JS_API = "$JS.API."
AGENT_JS_LOCAL = "$JS.platform.API."


def _local(subject: str) -> str:
    return (
        AGENT_JS_LOCAL + subject.removeprefix(AGENT_JS_API) if subject.startswith(AGENT_JS_API) else subject
    )


def agent_wiring(account: str, platform_public: str) -> AccountWiring:
    exports = [{"name": s, "subject": s, "type": "stream"} for s in agent_outbound(account)]
    exports += [
        {"name": s, "subject": s, "type": "service", "response_type": "Singleton"}
        for s in agent_services_to_platform(account)
    ]
    imports = [
        {"name": s, "subject": s, "account": platform_public, "type": "service", "local_subject": _local(s)}
        for s, _kind in agent_imports_from_platform(account)
    ]
    imports += [
        {"name": s, "subject": s, "account": platform_public, "type": "stream"}
        for s in agent_streams_from_platform(account)
    ]
    mappings = {
        s: [{"subject": _local(s), "weight": 100}]
        for s, _kind in agent_imports_from_platform(account)
        if s != _local(s)
    }
    return AccountWiring(exports, imports, mappings)


def account_claims(
    wiring: AccountWiring, *, jetstream: bool, revocations: dict[str, int] | None = None
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "type": "account",
        "version": 2,
        "limits": _limits(jetstream),
        "exports": wiring.exports,
        "imports": wiring.imports,
    }
    if wiring.mappings:
        claims["mappings"] = wiring.mappings
    if revocations:
        claims["revocations"] = dict(revocations)
    return claims


def user_claims(permissions: Permissions) -> dict[str, Any]:
    return {
        "type": "user",
        "version": 2,
        "subs": UNLIMITED,
        "data": UNLIMITED,
        "payload": UNLIMITED,
        **permissions.claims(),
    }
