"""Noisy neighbours with real agents in their sandboxes: one robot spins in a busy loop, one leaks memory,
one account is flooded with orders. Each offender is quarantined with its reason in the database (what the
web shows), the quiet agents keep trading; their order latency with and without the noise is printed
(a figure for the report, not asserted: timing on a shared 2-core machine is not a test)."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from mtrobot.storage import accounts as account_repo
from mtrobot.supervisor.quarantine import QuarantinePolicy
from mtrobot.supervisor.runtime import AgentLimits, choose_runtime
from mtrobot.supervisor.service import Supervisor, SupervisorOptions
from tests.integration.agent.agents import Platform, Trader, running, until
from tests.integration.agent.sandbox_helpers import connect_with_password

pytestmark = pytest.mark.slow

NOISY_ROBOTS = '''
import time
import uuid

from mtrobot.robots.api import Params, Robot


class Spin(Robot[Params]):
    """Never returns from on_start: a busy loop."""

    name = "test_spin"
    description = "a busy loop"
    params_model = Params

    def on_start(self, ctx):
        while True:
            pass


class Leak(Robot[Params]):
    """Keeps every block it allocates: a memory leak."""

    name = "test_leak"
    description = "a memory leak"
    params_model = Params

    def on_start(self, ctx):
        hoard = []
        while True:
            hoard.append(bytearray(4 << 20))
            time.sleep(0.02)
'''


def _robot(name: str) -> dict[str, object]:
    return {"robot": name, "symbol": "EURUSD", "enabled": True, "timeframe": "M1", "params": {},
            "sizing": {"mode": "fixed_lots", "lots": 0.01}}  # fmt: skip


def _state(platform: Platform, account: str) -> tuple[str, str]:
    with platform.sessions() as db:
        row = account_repo.account_by_id(db, account)
        assert row is not None
        return str(row.agent_state), str(row.agent_reason)


class FillClock:
    """When each fill arrives (an event per order, no polling), for the quiet agents' latency."""

    def __init__(self) -> None:
        self.arrived: dict[str, asyncio.Event] = {}
        self.at: dict[str, float] = {}

    async def listen(self, nc: Client, account: str) -> None:
        async def on_fill(msg: Any) -> None:
            order_id = json.loads(msg.data)["order_id"]
            self.at.setdefault(order_id, time.monotonic())
            self.arrived.setdefault(order_id, asyncio.Event()).set()

        await nc.subscribe(f"broker.fill.{account}.>", cb=on_fill)

    async def latencies(self, traders: list[Trader], rounds: int) -> list[float]:
        samples = []
        for _ in range(rounds):
            for trader in traders:
                order_id = "q" + uuid.uuid4().hex[:12]
                event = self.arrived.setdefault(order_id, asyncio.Event())
                t0 = time.monotonic()
                await trader.buy(order_id=order_id)
                await asyncio.wait_for(event.wait(), 15)
                samples.append((self.at[order_id] - t0) * 1000)
        return samples


async def test_busy_loop_leak_and_flood_are_quarantined_and_quiet_agents_trade(
    platform: Platform, nc: Client, data_dir: Path
) -> None:
    (data_dir / "robots").mkdir()
    (data_dir / "robots" / "noisy.py").write_text(NOISY_ROBOTS)
    options = SupervisorOptions(
        poll_s=0.5,
        limits=AgentLimits(memory_mb=200, cpu_share=0.5),
        quarantine=QuarantinePolicy(cpu_window_s=10.0, max_orders_per_min=50.0),
    )
    supervisor = Supervisor(platform.settings, choose_runtime(platform.settings), options,
                            nats_url=platform.settings.nats_url)  # fmt: skip
    async with running(supervisor, stop_timeout=60):
        quiet = [await Trader(nc, (await connect_with_password(platform))[0]).listen() for _ in range(2)]
        await asyncio.gather(*(t.wait_running(timeout=40) for t in quiet))
        clock = FillClock()
        for trader in quiet:
            await clock.listen(nc, trader.account)
        baseline = await clock.latencies(quiet, 10)

        offenders = {}
        for robot in ("test_spin", "test_leak", None):
            account, _ = await connect_with_password(platform)
            if robot is not None:
                with platform.sessions.begin() as db:
                    account_repo.save_portfolio(db, account, True, [_robot(robot)])
            offenders[robot or "flood"] = await Trader(nc, account).listen()
        flood = offenders["flood"]
        await flood.wait_running(timeout=40)
        await asyncio.gather(*(flood.buy() for _ in range(200)))
        noisy = await clock.latencies(quiet, 10)

        expected = {"test_spin": "busy loop", "test_leak": "memory limit", "flood": "order flood"}
        for name, trader in offenders.items():
            await until(lambda t=trader: _state(platform, t.account)[0] == "quarantined", 60,  # type: ignore[misc]
                        f"{name} to be quarantined")  # fmt: skip
            _, reason = _state(platform, trader.account)
            assert expected[name] in reason, (name, reason)
        for trader in quiet:
            assert _state(platform, trader.account) == ("active", "")
        after = await clock.latencies(quiet, 5)
        print(
            f"\nquiet agents' order latency p50: {statistics.median(baseline):.1f} ms alone, "
            f"{statistics.median(noisy):.1f} ms beside the offenders, "
            f"{statistics.median(after):.1f} ms after their quarantine "
            f"(runtime {supervisor.runtime.name})"
        )
        for name, trader in offenders.items():
            print(f"  {name}: {_state(platform, trader.account)[1]}")
