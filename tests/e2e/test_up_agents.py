"""``mtrobot up`` runs one agent per account: an account connected through the API gets an agent and fills a
market order within 15 s, removing it stops its agent, and a second ``up`` on the same data dir brings every
active account's agent back (and it trades)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mtrobot.sim.admin import SimAdmin
from tests.e2e.proc_tools import alive, start_up, wait_until
from tests.e2e.test_up_demo import LOGIN_RE
from tests.e2e.test_up_order_path import open_symbol


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(10)


def start_and_sign_in(data_dir: Path) -> tuple[subprocess.Popen[bytes], httpx.Client, str]:
    """``mtrobot up`` and a client signed in as the demo trader; an ``up`` that never got ready is stopped."""
    proc = start_up(data_dir)
    try:
        log = data_dir.parent / "up.log"
        wait_until(lambda: "Press Ctrl-C" in log.read_text(), 90, "mtrobot up ready", proc)
        match = LOGIN_RE.search(log.read_text())
        assert match, log.read_text()
        url, email, password = match.groups()
        client = httpx.Client(base_url=url, timeout=10)
        csrf: list[str] = []

        def signed_in() -> bool:
            try:
                r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
            except httpx.HTTPError:
                return False
            csrf[:] = [r.json()["csrf_token"]] if r.status_code == 200 else []
            return bool(csrf)

        wait_until(signed_in, 60, "the demo sign-in", proc)
    except BaseException:
        stop(proc)
        raise
    return proc, client, csrf[0]


def agents(data_dir: Path) -> dict[str, dict[str, Any]]:
    try:
        document = json.loads((data_dir / "run" / "agents.json").read_text())
    except (OSError, ValueError):
        return {}
    return {a["account"]: a for a in document["agents"]}


def running_pid(data_dir: Path, account: str) -> int | None:
    agent = agents(data_dir).get(account)
    if agent and agent["state"] == "running" and agent["pid"] and alive(agent["pid"]):
        return int(agent["pid"])
    return None


def open_sim_account(data_dir: Path) -> tuple[str, int, str]:
    run_file = data_dir / "run" / "simbroker.json"
    server = json.loads(run_file.read_text())["servers"][0]
    server = server["name"] if isinstance(server, dict) else server
    password = "Pw-" + secrets.token_urlsafe(10)
    login = asyncio.run(
        SimAdmin.from_run_file(run_file).create_account(
            server=server, password=password, investor_password=secrets.token_urlsafe(10),
            balance=50_000.0, currency="USD", leverage=100, name="API trader",
        )
    )  # fmt: skip
    return server, int(login), password


def place_and_fill(client: httpx.Client, csrf: str, account: str, symbol: str, timeout: float) -> float:
    """Seconds from the order's POST until the API shows it filled."""
    start = time.monotonic()
    r = client.post(f"/api/v1/accounts/{account}/orders", headers={"X-CSRF-Token": csrf},
                    json={"symbol": symbol, "order_type": "buy", "volume": 0.01})  # fmt: skip
    assert r.status_code == 202, r.text
    order_id = r.json()["order_id"]

    def filled() -> bool:
        state = client.get(f"/api/v1/accounts/{account}/orders/{order_id}").json()["state"]
        assert state not in ("rejected", "expired", "cancelled"), state
        return bool(state == "filled")

    wait_until(filled, timeout, f"order {order_id} filled")
    return time.monotonic() - start


@pytest.mark.slow  # two starts of the whole platform: about 60 s alone, more on a loaded machine
def test_an_api_account_gets_an_agent_that_fills_then_removed_and_a_second_up_brings_agents_back(
    data_dir: Path,
) -> None:
    symbol = open_symbol()
    if symbol is None:
        pytest.skip("the simulated market is in its daily maintenance break (5 minutes)")
    proc, client, csrf = start_and_sign_in(data_dir)
    try:
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
    finally:
        assert stop(proc) == 0

    (data_dir.parent / "up.log").write_text("")
    restarted = time.monotonic()
    proc, client, csrf = start_and_sign_in(data_dir)
    try:
        for account in ("demo", kept):
            wait_until(lambda a=account: running_pid(data_dir, a) is not None, 30, f"{account}'s agent", proc)
        print(f"second up -> both agents running {time.monotonic() - restarted:.1f} s")
        place_and_fill(client, csrf, kept, symbol, 15)
    finally:
        stop(proc)
