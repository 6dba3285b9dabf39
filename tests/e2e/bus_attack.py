"""What the demo account's agent identity tries, in ``tests/e2e/test_up_agents.py``, to forge a fill, an order
update, an error, a robot line, a reconciliation report and a snapshot for a second account, by every route
the bus offers: straight onto its subjects; on its own subjects, naming it; as the reply subject of a pull
of its own consumer, or of a direct get of its own snapshot key; a push consumer; its snapshot key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.js.api import ConsumerConfig

from mtrobot.bus import layout, subjects
from mtrobot.bus.authority import Identity, Trust
from mtrobot.bus.codec import encode
from mtrobot.bus.connect import own_key_value
from mtrobot.bus.identity import auth_dir
from mtrobot.core.events import (
    AccountSnapshot,
    BrokerError,
    ConnectionState,
    ErrorCategory,
    Fill,
    OrderUpdate,
    RobotEvent,
)
from mtrobot.core.lifecycle import OrderState
from mtrobot.settings import Settings

FORGED_BALANCE = 987_654.32
FORGED_SEQ = 10**12
BAITS = 12  # orders of the attacker's own intake carrying a forged event, for the reply-subject route


def a_second_user_of(data_dir: Path, account: str) -> Identity:
    """Another user with exactly the identity `up` gave ``account``'s agent (its running agent keeps its
    own: a user of the same account issued after it is not revoked)."""
    trust = Trust(auth_dir(Settings(data_dir=data_dir)))
    if account in trust.agents():  # the agent has its own NATS account
        return trust.agent_user(account)
    permissions = layout.platform_agent_permissions(account)  # the transitional layout: a platform user
    return trust._user(f"agent-{account}", trust.platform, layout.PLATFORM_ACCOUNT, permissions)


def forgeries(victim: str, marker: str, symbol: str, account: str | None = None) -> dict[str, bytes]:
    """One of each event naming ``account`` (the victim unless given), keyed by kind."""
    who = account or victim
    now = datetime.now(UTC)
    fill = Fill(order_id=f"{marker}f", account=who, symbol=symbol, side="buy", ticket=1, deal=990001,
                position=1, volume=7.0, price=1.0, requested_volume=7.0, remaining_volume=0.0,
                partial=False, retcode=10009, broker_time=now, latency_ms=1.0)  # fmt: skip
    update = OrderUpdate(order_id=f"{marker}u", account=who, symbol=symbol, state=OrderState.CANCELLED)
    error = BrokerError(order_id=f"{marker}e", account=who, symbol=symbol, retcode=10006, message=marker,
                        retcode_name="TRADE_RETCODE_REJECT", category=ErrorCategory.FATAL)  # fmt: skip
    snapshot = AccountSnapshot(seq=FORGED_SEQ, account=who, connection=ConnectionState.QUARANTINED,
                               currency="USD", balance=FORGED_BALANCE, equity=FORGED_BALANCE)  # fmt: skip
    robot = RobotEvent(account=who, kind="guard", message=marker)
    report = {"account": who, "differences": [{"kind": "extra", "symbol": symbol, "detail": marker}]}
    return {
        "fill": encode(fill),
        "order": encode(update),
        "error": encode(error),
        "snapshot": encode(snapshot),
        "robot": encode(robot),
        "report": json.dumps(report).encode(),
    }


def subject_of(kind: str, account: str, symbol: str) -> str:
    if kind in ("fill", "order", "error"):
        return f"broker.{kind}.{account}.{symbol}"
    return {
        "snapshot": subjects.snapshot(account),
        "robot": subjects.robot_event(account),
        "report": subjects.reconciliation_report(account),
    }[kind]


async def attack(url: str, creds: str, attacker: str, victim: str, symbol: str, marker: str) -> list[str]:
    """Every route; returns the JetStream and KV attempts the bus refused (each must be refused)."""
    nc = await nats.connect(url, user_credentials=nats.aio.client.RawCredentials(creds),
                            inbox_prefix=layout.agent_inbox_prefix(attacker), allow_reconnect=False,
                            connect_timeout=5)  # fmt: skip
    refused: list[str] = []
    js = nc.jetstream(timeout=2)
    try:
        # 1. Straight onto the victim's subjects.
        for kind, payload in forgeries(victim, marker, symbol).items():
            await nc.publish(subject_of(kind, victim, symbol), payload)
        # 2. On its own subjects, naming the victim in the payload.
        for kind, payload in forgeries(victim, marker, symbol).items():
            await nc.publish(subject_of(kind, attacker, symbol), payload)
        # 3. As the reply subject of a pull of its own consumer, whose messages it wrote itself (the
        #    server does not check reply subjects): each delivered bait lands on the reply subject.
        next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{subjects.ORDERS_STREAM}.{layout.agent_consumer(attacker)}"
        baits = forgeries(victim, marker, symbol)
        for _ in range(BAITS // 3):
            for kind in ("fill", "order", "snapshot"):
                pull = json.dumps({"batch": 1, "expires": 3_000_000_000}).encode()
                await nc.publish(next_subject, pull, reply=subject_of(kind, victim, symbol))
                try:
                    await js.publish(subjects.orders_submitted(attacker, symbol), baits[kind])
                except Exception:
                    refused.append(f"bait {kind}")
        # 3b. As the reply subject of a direct get of its own snapshot key, holding a forged event it wrote:
        #     no race with its agent, the stored message goes to the reply subject.
        own = own_key_value(js, subjects.SNAPSHOTS_BUCKET)
        get_own = (
            f"$JS.API.DIRECT.GET.KV_{subjects.SNAPSHOTS_BUCKET}.$KV.{subjects.SNAPSHOTS_BUCKET}.{attacker}"
        )
        for kind in ("fill", "order", "snapshot", "robot"):
            try:
                await own.put(attacker, baits[kind])
            except Exception:
                refused.append(f"own key {kind}")
            await nc.publish(get_own, b"", reply=subject_of(kind, victim, symbol))
            await nc.flush(timeout=5)
        # 4. A push consumer delivering into the victim's subjects.
        for stream, filter_subject in (
            (subjects.ORDERS_STREAM, f"orders.submitted.{attacker}.>"),
            (f"KV_{subjects.HUB_BUCKET}", None),
            (f"KV_{subjects.SNAPSHOTS_BUCKET}", None),
        ):
            config = ConsumerConfig(deliver_subject=subjects.broker_fill(victim, symbol),
                                    filter_subject=filter_subject)  # fmt: skip
            try:
                await js.add_consumer(stream, config)
            except Exception:
                refused.append(f"push consumer on {stream}")
        # 5. The victim's snapshot key.
        forged = forgeries(victim, marker, symbol)["snapshot"]
        for name, write in (
            ("kv put", own_key_value(js, subjects.SNAPSHOTS_BUCKET).put(victim, forged)),
            ("js publish", js.publish(f"$KV.{subjects.SNAPSHOTS_BUCKET}.{victim}", forged)),
        ):
            try:
                await write
            except Exception:
                refused.append(f"snapshot key by {name}")
        await nc.publish(f"$KV.{subjects.SNAPSHOTS_BUCKET}.{victim}", forged)
        await nc.flush(timeout=5)
    finally:
        await nc.close()
    return refused


def activity(client: httpx.Client, account: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/accounts/{account}/activity", params={"limit": 500})
    assert r.status_code == 200, r.text
    return list(r.json())
