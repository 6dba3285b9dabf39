"""A supervisor that stops takes its agents with it at once: each stops itself (exit code 0), none is left to
be killed at the end of the grace, in the runtime ``mtrobot up`` chooses here."""

from __future__ import annotations

import asyncio
import time

from nats.aio.client import Client

from mtrobot.supervisor.runtime import choose_runtime
from tests.e2e.proc_tools import alive
from tests.integration.agent.agents import Platform, Trader, until
from tests.integration.agent.sandbox_helpers import connect_with_password

AGENTS = 5
BOUND_S = 6.0
"""Generous: 0.3-0.9 s measured at load 4-6 (2 cores); an agent killed at the end of the test grace
(10 s) takes 10 s. Before the intake gave its pull subscription up, about half of the stops of five agents
had one or more agents killed so."""


async def test_every_agent_stops_itself_soon_after_the_supervisor_stops(
    platform: Platform, nc: Client
) -> None:
    supervisor = platform.supervisor(choose_runtime(platform.settings))
    task = asyncio.create_task(supervisor.run())
    processes = []
    try:
        accounts = [(await connect_with_password(platform))[0] for _ in range(AGENTS)]
        traders = [await Trader(nc, account).listen() for account in accounts]
        await asyncio.gather(*(trader.wait_running(timeout=60) for trader in traders))
        processes = [slot.process for slot in supervisor.slots.values() if slot.process is not None]
        assert len(processes) == AGENTS
    finally:
        start = time.monotonic()
        supervisor.stop()
    took = await until(lambda: not any(alive(p.pid) for p in processes), 30, "every agent to end")
    await asyncio.wait_for(task, 30)
    codes = [await asyncio.wait_for(p.wait(), 5) for p in processes]
    assert codes == [0] * AGENTS, f"exit codes {codes}: an agent was killed instead of stopping"
    assert time.monotonic() - start < BOUND_S, f"the agents took {took:.1f} s to stop"
