"""``mtrobot up``, started once for these tests (:class:`~tests.e2e.up_platform.SharedUp`; each start of the
whole platform costs 20-40 s on the shared 2-core machine):

- on a fresh data dir it prints the URL and a demo login, which works, with the demo account alone, whose
  portfolio is active;
- its embedded bus (JWT accounts) refuses anonymous clients, the operator's ``run/nats-admin.creds`` (0600)
  sees the platform, and an order placed there fills through the demo agent, which the supervisor started
  with its own bus identity; ``mtrobot status`` uses the operator's;
- the demo account's agent identity cannot forge a second account's activity, equity history or dashboard
  state by any route the bus offers (:mod:`tests.e2e.bus_attack`), while its own genuine fill does show;
- an account connected through the API gets an agent and fills a market order within 15 s, removing it
  stops its agent; stopped, ``up`` exits 0 and the bus identities are gone, and a second ``up`` on the same
  data dir brings every active account's agent back (and it trades), the demo account logging in at the new
  simulator."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import nats
import nats.errors
import pytest

from mtrobot.bus import subjects
from mtrobot.bus.connect import connect
from tests.e2e.bus_attack import FORGED_BALANCE, FORGED_SEQ, a_second_user_of, activity, attack
from tests.e2e.proc_tools import alive, mtrobot_command, wait_until
from tests.e2e.test_up_order_path import _until, open_symbol
from tests.e2e.up_platform import SharedUp, open_sim_account, place_and_fill, running_pid


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedUp]:
    shared = SharedUp(tmp_path_factory)
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture
def symbol() -> str:
    name = open_symbol()
    if name is None:
        pytest.skip("the simulated market is in its daily maintenance break (5 minutes)")
    return name


def test_up_prints_the_url_and_a_demo_login_that_works_with_the_demo_account_alone(up: SharedUp) -> None:
    platform = up.get(pristine=True)
    assert platform.accounts_at_sign_in == ["demo"]
    assert platform.client.get("/api/v1/accounts/demo/portfolio").json()["active"] is True


async def test_embedded_bus_refuses_anonymous_and_routes_orders_across_accounts(
    up: SharedUp, symbol: str
) -> None:
    platform = up.get(pristine=True)  # nothing attacked it yet: no permissions violation in any log
    data_dir = platform.data_dir
    run = data_dir / "run"
    admin = run / "nats-admin.creds"
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
        mtrobot_command("status", "--data-dir", str(data_dir)), capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert "nats-admin.creds" in status.stdout and "WARNING" not in status.stdout


@pytest.mark.slow  # the whole platform, two agents
def test_an_agent_cannot_forge_another_accounts_activity_or_dashboard_through_mtrobot_up(
    up: SharedUp, symbol: str
) -> None:
    platform = up.get(pristine=True)
    up.touch()
    data_dir, client, csrf, proc = platform.data_dir, platform.client, platform.csrf, platform.proc
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


@pytest.mark.slow  # a second start of the whole platform
def test_an_api_account_gets_an_agent_that_fills_then_removed_and_a_second_up_brings_agents_back(
    up: SharedUp, symbol: str
) -> None:
    platform = up.get()
    up.touch()
    data_dir, client, csrf, proc = platform.data_dir, platform.client, platform.csrf, platform.proc
    wait_until(lambda: running_pid(data_dir, "demo") is not None, 30, "the demo account's agent", proc)
    server, login, password = open_sim_account(data_dir)
    connected = time.monotonic()
    r = client.post("/api/v1/accounts", headers={"X-CSRF-Token": csrf},
                    json={"server": server, "login": login, "password": password})  # fmt: skip
    assert r.status_code == 201, r.text
    account = r.json()["id"]
    wait_until(lambda: running_pid(data_dir, account) is not None, 10, "the new account's agent", proc)
    agent_s = time.monotonic() - connected
    order_s = place_and_fill(client, csrf, account, symbol, 15)
    fill_s = time.monotonic() - connected
    print(f"connected -> agent {agent_s:.1f} s, order -> filled {order_s:.1f} s, total {fill_s:.1f} s")
    assert fill_s < 15, "connect to first fill took 15 s or more"

    pid = running_pid(data_dir, account)
    assert pid is not None
    r = client.delete(f"/api/v1/accounts/{account}", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204, r.text
    removed = time.monotonic()
    wait_until(lambda: not alive(pid), 15, "the removed account's agent to stop", proc)
    print(f"removed -> agent gone {time.monotonic() - removed:.1f} s")

    server, login, password = open_sim_account(data_dir)
    r = client.post("/api/v1/accounts", headers={"X-CSRF-Token": csrf},
                    json={"server": server, "login": login, "password": password})  # fmt: skip
    kept = r.json()["id"]
    wait_until(lambda: running_pid(data_dir, kept) is not None, 10, "the kept account's agent", proc)
    stopping = time.monotonic()
    assert up.stop() == 0
    print(f"SIGTERM -> up exited {time.monotonic() - stopping:.1f} s")
    assert not (data_dir / "run" / "nats-admin.creds").exists()  # the identities of a bus that is gone

    restarted = time.monotonic()
    platform = up.get()
    client, csrf, proc = platform.client, platform.csrf, platform.proc
    for account in ("demo", kept):
        wait_until(lambda a=account: running_pid(data_dir, a) is not None, 30, f"{account}'s agent", proc)
    print(f"second up -> both agents running {time.monotonic() - restarted:.1f} s")
    place_and_fill(client, csrf, kept, symbol, 15)

    # The simulator forgets its accounts when it stops: the second start opened the demo account again.
    def demo_connects() -> bool:
        r = client.post("/api/v1/accounts/demo/test", headers={"X-CSRF-Token": csrf})
        return r.status_code == 200 and r.json()["ok"] is True

    wait_until(demo_connects, 30, "the demo account to log in at the new simulator", proc)
