"""``mtrobot up`` on its embedded bus (JWT accounts): anonymous clients are refused, the operator's
``run/nats-admin.creds`` (0600) sees the platform, and an order placed there fills through the demo
agent, which the supervisor started with its own bus identity; ``mtrobot status`` uses the operator's.

And the demo account's agent identity tries to forge a fill, an order update, an error, a robot line, a
reconciliation report and a snapshot for a second account by every route the bus offers: straight onto its
subjects; on its own subjects, naming it; as the reply subject of a pull of its own consumer, or of a direct
get of its own snapshot key; a push consumer; its snapshot key. The web's activity log, equity history and
dashboard state for that account show none of it, while the demo agent's own genuine fill does show (the
positive control)."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import pytest
from nats.js.api import ConsumerConfig

from mtrobot.bus import layout, subjects
from mtrobot.bus.authority import Identity, Trust
from mtrobot.bus.codec import encode
from mtrobot.bus.connect import connect, own_key_value
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
from tests.e2e.proc_tools import mtrobot_command, start_up, wait_until
from tests.e2e.test_up_agents import open_sim_account, running_pid, start_and_sign_in, stop
from tests.e2e.test_up_order_path import _until, open_symbol


async def test_embedded_bus_refuses_anonymous_and_routes_orders_across_accounts(data_dir: Path) -> None:
    symbol = open_symbol()
    if symbol is None:
        pytest.skip("the simulated market is in its daily maintenance break (5 minutes)")
    proc = start_up(data_dir)
    run = data_dir / "run"
    try:
        admin = run / "nats-admin.creds"
        wait_until(lambda: (run / "nats.url").exists() and admin.exists(), 60, "the embedded bus", proc)
        url = (run / "nats.url").read_text().strip()
        assert stat.S_IMODE(admin.stat().st_mode) == 0o600
        assert "BEGIN NATS USER JWT" in admin.read_text() and "BEGIN USER NKEY SEED" in admin.read_text()
        for service in ("web", "hub", "recorder", "supervisor", "launcher"):
            assert stat.S_IMODE((run / f"nats-{service}.creds").stat().st_mode) == 0o600

        with pytest.raises(nats.errors.Error):
            await nats.connect(url, allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=0)

        nc = await connect(url, "tests-admin", creds=str(admin), max_reconnect_attempts=3)
        try:
            js = nc.jetstream(timeout=5)
            got: dict[str, list[dict[str, Any]]] = {"fill": [], "order": []}
            beats: list[dict[str, Any]] = []

            async def on_beat(msg: Any) -> None:
                beats.append(json.loads(msg.data))

            await nc.subscribe(subjects.agent_heartbeat("demo"), cb=on_beat)
            for kind, items in got.items():

                async def cb(msg: Any, items: list[dict[str, Any]] = items) -> None:
                    items.append(json.loads(msg.data))

                await nc.subscribe(f"broker.{kind}.demo.>", cb=cb)
            deadline = time.monotonic() + 90
            ready = False
            while not ready and time.monotonic() < deadline:
                with_consumer = [i.name for i in await js.consumers_info(subjects.ORDERS_STREAM)]
                running = any(b.get("state") == "running" for b in beats)  # the agent's own heartbeat
                ready = "connector_demo" in with_consumer and running
                await asyncio.sleep(0.3)
            assert ready, (data_dir.parent / "up.log").read_text()[-3000:]

            oid = "e2e" + uuid.uuid4().hex[:10]
            req = {"order_id": oid, "account": "demo", "symbol": symbol, "order_type": "buy", "volume": 0.01}
            await js.publish(subjects.orders_submitted("demo", symbol), json.dumps(req).encode())
            assert await _until(lambda: any(f["order_id"] == oid for f in got["fill"]), 30), (
                data_dir / "logs" / "agent-demo.log"
            ).read_text()[-3000:]
            # The consumer's ack came back from the agent's account: nothing left pending.
            info = await js.consumer_info(subjects.ORDERS_STREAM, "connector_demo")
            assert info.num_pending == 0
            # The agent did all of that within its permissions: the bus refused it nothing.
            for log_file in (data_dir / "logs").glob("*.log"):
                assert "ermissions violation" not in log_file.read_text(), log_file.name
        finally:
            await nc.close()

        status = subprocess.run(
            mtrobot_command("status", "--data-dir", str(data_dir)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        assert "nats-admin.creds" in status.stdout and "WARNING" not in status.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert not (run / "nats-admin.creds").exists()  # the identities of a bus that is gone


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


@pytest.mark.slow  # the whole platform, two agents
def test_an_agent_cannot_forge_another_accounts_activity_or_dashboard_through_mtrobot_up(
    data_dir: Path,
) -> None:
    symbol = open_symbol()
    if symbol is None:
        pytest.skip("the simulated market is in its daily maintenance break (5 minutes)")
    proc, client, csrf = start_and_sign_in(data_dir)
    try:
        wait_until(lambda: running_pid(data_dir, "demo") is not None, 60, "the demo account's agent", proc)
        server, login, password = open_sim_account(data_dir)
        r = client.post("/api/v1/accounts", headers={"X-CSRF-Token": csrf},
                        json={"server": server, "login": login, "password": password})  # fmt: skip
        assert r.status_code == 201, r.text
        victim = r.json()["id"]
        wait_until(lambda: running_pid(data_dir, victim) is not None, 60, "the victim's agent", proc)
        board = f"/api/v1/accounts/{victim}/agent"
        wait_until(lambda: client.get(board).json().get("seq") is not None, 60, "the victim's snapshot")

        marker = "forged" + uuid.uuid4().hex[:8]
        url = (data_dir / "run" / "nats.url").read_text().strip()
        creds = a_second_user_of(data_dir, "demo").creds
        refused = asyncio.run(attack(url, creds, "demo", victim, symbol, marker))

        # The positive control, after the attack: the attacker's own genuine fill shows in its activity.
        r = client.post("/api/v1/accounts/demo/orders", headers={"X-CSRF-Token": csrf},
                        json={"symbol": symbol, "order_type": "buy", "volume": 0.01})  # fmt: skip
        assert r.status_code == 202, r.text
        genuine = r.json()["order_id"]
        wait_until(
            lambda: any(a["kind"] == "fill" and a["order_id"] == genuine for a in activity(client, "demo")),
            60,
            "the demo agent's genuine fill in its activity",
        )

        lines = activity(client, victim)
        assert not [a for a in lines if marker in a["message"] or marker in (a["order_id"] or "")], lines
        assert not [a for a in lines if a["kind"] == "quarantine"], lines
        state = client.get(board).json()
        assert state["balance"] != FORGED_BALANCE and state["seq"] != FORGED_SEQ, state
        equity = client.get(f"/api/v1/accounts/{victim}/equity").json()
        assert all(point["balance"] != FORGED_BALANCE for point in equity), equity
        # Every push consumer and snapshot-key write was refused outright (the baits are its own orders).
        assert len([r for r in refused if r.startswith(("push", "snapshot"))]) == 5, refused
    finally:
        stop(proc)
