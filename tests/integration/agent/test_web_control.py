"""The trader's kill switch through the web API, against a real agent process: pause refuses new opens with
the reason, holds across a restart of the agent, resume trades again; flatten closes every position; a
``read`` token can control nothing; another trader's account is not found; the agent route shows the
heartbeat (state, pid, memory, CPU, order rate)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from nats.aio.client import Client

from mtrobot.storage import traders as trader_repo
from mtrobot.web.app import create_app
from mtrobot.web.config import WebOptions
from mtrobot.web.security import digest
from tests.integration.agent.agents import Platform, Trader, running, until

API = "/api/v1/accounts"


def token(platform: Platform, scope: str, trader_id: str | None = None) -> dict[str, str]:
    secret = secrets.token_urlsafe(24)
    with platform.sessions.begin() as db:
        trader_repo.add_token(db, f"tok_{secrets.token_hex(4)}", trader_id or platform.trader_id, "t", scope,
                              digest(secret))  # fmt: skip
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def web(platform: Platform) -> Iterator[TestClient]:
    app = create_app(platform.settings, WebOptions(listen_to_bus=True))
    with TestClient(app, base_url="https://testserver") as client:
        yield client


async def call(client: TestClient, method: str, url: str, **kwargs: Any) -> Any:
    return await asyncio.to_thread(client.request, method, url, **kwargs)


async def test_the_kill_switch_pauses_holds_across_a_restart_resumes_and_flattens(
    platform: Platform, nc: Client, web: TestClient
) -> None:
    trade, read = token(platform, "trade"), token(platform, "read")
    async with running(platform.supervisor()) as supervisor:
        account, login = await platform.connect_account()
        trader = await Trader(nc, account).listen()
        await trader.wait_running()
        kept = await trader.buy()
        await until(lambda: bool(trader.filled(kept)), 15, "a position to flatten later")

        r = await call(web, "POST", f"{API}/{account}/control", json={"cmd": "pause"}, headers=read)
        assert r.status_code == 403 and r.json()["code"] == "read_only_token"
        r = await call(web, "POST", f"{API}/{account}/control", json={"cmd": "pause"}, headers=trade)
        assert r.status_code == 200, r.text
        assert r.json()["applied"] is True and r.json()["state"] == "paused"

        pid = supervisor.slots[account].process.pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)  # the pause must hold in the agent that comes back

        def restarted() -> bool:
            process = supervisor.slots[account].process
            return process is not None and process.pid != pid

        await until(restarted, 15, "a new agent")
        refused = await trader.buy()
        await until(lambda: "rejected" in trader.states(refused), 20, "the paused open's rejection")
        assert "paused by the trader" in next(e for e in trader.errors if e["order_id"] == refused)["message"]

        async def agent() -> dict[str, Any]:
            body: dict[str, Any] = (await call(web, "GET", f"{API}/{account}/agent", headers=read)).json()
            return body

        status: dict[str, Any] = {}

        async def paused_heartbeat() -> None:
            while True:
                status.update(await agent())
                if status["state"] == "paused" and (status["orders_per_min"] or 0) >= 1:
                    return
                await asyncio.sleep(0.2)

        await asyncio.wait_for(paused_heartbeat(), 15)  # the next heartbeat counts the refused order
        assert status["agent_state"] == "paused" and status["rss_mb"] > 0 and status["cpu_pct"] is not None
        assert status["pid"] and status["heartbeat_age_s"] < 15

        r = await call(web, "POST", f"{API}/{account}/control", json={"cmd": "flatten"}, headers=trade)
        assert r.status_code == 200 and r.json()["applied"], r.text
        state: dict[str, Any] = {}

        async def flat() -> None:
            while True:
                state.update(await platform.sim.admin().account_state(login=login))
                if not state["positions"]:
                    return
                await asyncio.sleep(0.2)

        await asyncio.wait_for(flat(), 20)  # closing works while paused

        r = await call(web, "POST", f"{API}/{account}/control", json={"cmd": "resume"}, headers=trade)
        assert r.status_code == 200 and r.json()["state"] == "running", r.text
        order_id = await trader.buy()
        await until(lambda: bool(trader.filled(order_id)), 15, "a fill after resume")

        stranger = token(platform, "trade", await asyncio.to_thread(_other_trader, platform))
        r = await call(web, "POST", f"{API}/{account}/control", json={"cmd": "pause"}, headers=stranger)
        assert r.status_code == 404
        r = await call(web, "POST", f"{API}/{account}/control", json={"cmd": "stop"}, headers=trade)
        assert r.status_code == 422


def _other_trader(platform: Platform) -> str:
    other = f"trd_{secrets.token_hex(4)}"
    with platform.sessions.begin() as db:
        trader_repo.add_trader(db, other, f"{other}@example.com", "O", "x")
    return other
