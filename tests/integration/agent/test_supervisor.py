"""The supervisor runs one real ``mtrobot agent`` process per account in the database: a new account gets an
agent that fills a market order; a removed one loses it; control pauses and resumes trading; a kill -9 of an
agent in the middle of a stream of orders loses none and duplicates none."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from nats.aio.client import Client

from mtrobot.supervisor.runtime import choose_runtime
from mtrobot.supervisor.service import Supervisor
from tests.e2e.proc_tools import alive
from tests.integration.agent.agents import Platform, Trader, running, until


def pid_of(supervisor: Supervisor, account: str) -> int | None:
    slot = supervisor.slots.get(account)
    return slot.process.pid if slot is not None and slot.process is not None else None


async def test_a_new_account_gets_an_agent_that_fills_and_a_removed_one_loses_it(
    platform: Platform, nc: Client
) -> None:
    async with running(platform.supervisor()) as supervisor:
        account, _login = await platform.connect_account()
        trader = await Trader(nc, account).listen()
        await trader.wait_running()
        order_id = await trader.buy()
        await until(lambda: bool(trader.filled(order_id)), 15, "the fill")
        pid = pid_of(supervisor, account)
        assert pid is not None and alive(pid)
        assert trader.heartbeats[-1]["pid"] == pid and trader.heartbeats[-1]["rss_mb"] > 0

        platform.remove_account(account)
        await until(lambda: not alive(pid), 15, "the removed account's agent to stop")
        assert account not in supervisor.slots


async def test_pause_refuses_new_opens_with_the_reason_and_resume_trades_again(
    platform: Platform, nc: Client
) -> None:
    async with running(platform.supervisor()):
        account, _login = await platform.connect_account()
        trader = await Trader(nc, account).listen()
        await trader.wait_running()
        reply = await trader.control("pause")
        assert reply["ok"] and reply["state"] == "paused"
        refused = await trader.buy()
        await until(lambda: "rejected" in trader.states(refused), 10, "the paused open's rejection")
        error = next(e for e in trader.errors if e["order_id"] == refused)
        assert "paused by the trader" in error["message"] and not trader.filled(refused)
        await until(lambda: trader.heartbeats[-1]["state"] == "paused", 10, "a paused heartbeat")

        reply = await trader.control("resume")
        assert reply["ok"] and reply["state"] == "running"
        order_id = await trader.buy()
        await until(lambda: bool(trader.filled(order_id)), 15, "the fill after resume")
        bad = await trader.control("nonsense")
        assert bad["ok"] is False and "cmd" in bad["message"]


@pytest.mark.parametrize("runtime", ["local", "chosen"])
async def test_kill_9_mid_stream_restarts_the_agent_and_loses_and_duplicates_nothing(
    platform: Platform, nc: Client, runtime: str
) -> None:
    """Also with the runtime ``mtrobot up`` chooses here (the bubblewrap sandbox where it runs)."""
    chosen = choose_runtime(platform.settings) if runtime == "chosen" else None
    async with running(platform.supervisor(chosen)) as supervisor:
        account, login = await platform.connect_account()
        trader = await Trader(nc, account).listen()
        await trader.wait_running()
        first = pid_of(supervisor, account)
        assert first is not None
        total = 30
        order_ids: list[str] = []

        async def stream() -> None:
            for _ in range(total):
                order_ids.append(await trader.buy())
                await asyncio.sleep(0.05)

        publisher = asyncio.create_task(stream())
        await until(lambda: len({f["order_id"] for f in trader.fills}) >= 5, 15, "the first fills")
        os.kill(first, signal.SIGKILL)
        killed = time.monotonic()
        restart_s = await until(lambda: pid_of(supervisor, account) not in (None, first), 15, "a new agent")
        seen = len(trader.fills)  # from here on every fill is the new agent's
        next_fill_s = restart_s + await until(lambda: len(trader.fills) > seen, 60, "a fill after the kill")
        await publisher
        await until(lambda: all(trader.filled(o) for o in order_ids), 60, "every order filled")
        all_s = time.monotonic() - killed
        print(f"kill -9: new agent {restart_s:.1f} s, next fill {next_fill_s:.1f} s, "
              f"all {total} filled {all_s:.1f} s")  # fmt: skip
        assert {f["order_id"] for f in trader.fills} == set(order_ids)
        deals = {(f["order_id"], f["deal"]) for f in trader.fills}
        assert len(deals) == total, "an order filled twice at the broker"
        state = await platform.sim.admin().account_state(login=login)
        assert len(state["positions"]) == total  # the broker's own book: 30 buys, 30 positions, no more
        assert supervisor.slots[account].restarts == 1

        def agent_lines() -> list[str]:
            return [row.message for row in reversed(platform.activity(account)) if row.kind == "agent"]

        await until(lambda: len(agent_lines()) >= 2, 15, "the stop and the restart in the activity log")
        lines = agent_lines()
        assert len(lines) == 2, lines  # the trader sees the gap: when it stopped, why, and that it is back
        assert "stopped unexpectedly: it was killed (SIGKILL); it is started again in" in lines[0]
        assert lines[1].startswith("The account's agent is running again, ")


async def test_a_stopped_agent_is_not_restarted_and_the_status_file_tells(
    platform: Platform, nc: Client
) -> None:
    async with running(platform.supervisor()) as supervisor:
        account, _login = await platform.connect_account()
        trader = await Trader(nc, account).listen()
        await trader.wait_running()
        pid = pid_of(supervisor, account)
        assert pid is not None
        assert (await trader.control("stop"))["ok"]
        await until(lambda: not alive(pid), 15, "the agent to stop")
        await until(lambda: supervisor.slots[account].state == "held", 5, "the slot to be held")
        rounds = supervisor.rounds
        await until(lambda: supervisor.rounds >= rounds + 5, 10, "five more supervisor rounds")
        assert pid_of(supervisor, account) is None
        status = Path(platform.settings.run_dir / "agents.json").read_text()
        assert '"held"' in status
