"""Noisy neighbours with real agents in their sandboxes: one robot spins in a busy loop, one leaks memory,
one account is flooded with orders. Each offender is quarantined with its reason in the database (what the
web shows), the quiet agents keep trading; their order latency with and without the noise is printed
(a figure for the report, not asserted: timing on a shared 2-core machine is not a test).

The quiet agents send one market buy each per round (timed to its fill) and close it (not timed), a round
every ``ROUND_S`` (paced like a robot, not back to back: under the intake limit and the flood quarantine's),
``ROUNDS`` rounds alone, then from the moment the offenders are connected until all three are quarantined
(at least ``ROUNDS``), then ``ROUNDS`` after. ``NOISY_OFFENDERS`` (default ``spin,leak,flood``) names the
offenders to start; empty, the same run without any: the run to compare with (docs/performance.md)."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
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

ROUNDS = 50
"""Rounds per phase (two quiet agents: 100 orders)."""
ROUND_S = 0.5
"""A buy and its close per quiet agent every 0.5 s: 240 orders a minute each, under the limits below (300)."""
FLOOD = 400
NAMES = {"test_spin": "spin", "test_leak": "leak", None: "flood"}
OFFENDERS = {n for n in os.environ.get("NOISY_OFFENDERS", "spin,leak,flood").split(",") if n}

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


FLOODER = """
import asyncio, json, sys, uuid
from nats.aio.client import Client

async def main(url, account, count):
    nc = Client()
    await nc.connect(url, name="flooder", connect_timeout=5)
    js = nc.jetstream(timeout=10)
    subject = f"orders.submitted.{account}.EURUSD"
    async def one():
        oid = "f" + uuid.uuid4().hex[:12]
        body = {"order_id": oid, "account": account, "symbol": "EURUSD", "order_type": "buy", "volume": 0.01}
        await js.publish(subject, json.dumps(body).encode(), headers={"Nats-Msg-Id": f"{account}/{oid}"})
    await asyncio.gather(*(one() for _ in range(count)))
    await nc.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""
"""The flood comes from a process of its own over a connection of its own (as from the flooding account's
robots), not over the test's connection, whose quiet orders would queue behind it in one socket and loop."""


async def flood_orders(url: str, account: str, count: int) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", FLOODER, url, account, str(count))
    assert await asyncio.wait_for(proc.wait(), 60) == 0


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
        self.position: dict[str, int] = {}

    async def listen(self, nc: Client, account: str) -> None:
        async def on_fill(msg: Any) -> None:
            fill = json.loads(msg.data)
            self.at.setdefault(fill["order_id"], time.monotonic())
            self.position.setdefault(fill["order_id"], int(fill["position"]))
            self.arrived.setdefault(fill["order_id"], asyncio.Event()).set()

        await nc.subscribe(f"broker.fill.{account}.>", cb=on_fill)

    async def _filled(self, order_id: str) -> None:
        await asyncio.wait_for(self.arrived.setdefault(order_id, asyncio.Event()).wait(), 15)

    async def one(self, trader: Trader) -> float:
        """A market buy's latency, submitted to its fill; then its position is closed (not timed), so that
        every account holds no position at the next order: the simulator's order checks and the agent's
        position reads grow with the open positions, which would make later phases slower by themselves."""
        order_id = "q" + uuid.uuid4().hex[:12]
        t0 = time.monotonic()
        await trader.buy(order_id=order_id)
        await self._filled(order_id)
        close_id = "c" + uuid.uuid4().hex[:12]
        await trader.close(self.position[order_id], order_id=close_id)
        await self._filled(close_id)
        return (self.at[order_id] - t0) * 1000

    async def latencies(
        self, traders: list[Trader], rounds: int, until_done: asyncio.Future[Any] | None = None
    ) -> Phase:
        """``rounds`` rounds of one order per trader, one round every ``ROUND_S`` (more while
        ``until_done`` is not done)."""
        phase = Phase()
        loop = asyncio.get_running_loop()
        start = loop.time()
        i = 0
        while i < rounds or (until_done is not None and not until_done.done()):
            await asyncio.sleep(max(0.0, start + i * ROUND_S - loop.time()))  # pacing, not waiting for
            phase.samples += await asyncio.gather(*(self.one(t) for t in traders))
            i += 1
        phase.end()
        return phase


class Phase:
    def __init__(self) -> None:
        self.samples: list[float] = []
        self.load = [os.getloadavg()[0]]

    def end(self) -> None:
        self.load.append(os.getloadavg()[0])

    def __str__(self) -> str:
        q = statistics.quantiles(self.samples, n=10)
        return (f"p50 {statistics.median(self.samples):.1f} ms, p90 {q[-1]:.1f} ms over {len(self.samples)} "
                f"orders, load {self.load[0]:.2f} -> {self.load[1]:.2f}")  # fmt: skip


async def test_busy_loop_leak_and_flood_are_quarantined_and_quiet_agents_trade(
    platform: Platform, nc: Client, data_dir: Path
) -> None:
    (data_dir / "robots").mkdir()
    (data_dir / "robots" / "noisy.py").write_text(NOISY_ROBOTS)
    platform.settings = platform.settings.model_copy(update={"orders_per_min": 300.0})
    options = SupervisorOptions(
        poll_s=0.5,
        limits=AgentLimits(memory_mb=200, cpu_share=0.5),
        quarantine=QuarantinePolicy(cpu_window_s=10.0, max_orders_per_min=300.0),
    )
    supervisor = Supervisor(platform.settings, choose_runtime(platform.settings), options,
                            nats_url=platform.settings.nats_url)  # fmt: skip
    async with running(supervisor, stop_timeout=60):
        quiet = [await Trader(nc, (await connect_with_password(platform))[0]).listen() for _ in range(2)]
        await asyncio.gather(*(t.wait_running(timeout=40) for t in quiet))
        clock = FillClock()
        for trader in quiet:
            await clock.listen(nc, trader.account)
        await clock.latencies(quiet, 3)  # warm: the first orders of a session read the specification
        baseline = await clock.latencies(quiet, ROUNDS)

        expected = {"test_spin": "busy loop", "test_leak": "memory limit", "flood": "order flood"}
        offenders: dict[str, Trader] = {}

        async def offend() -> None:
            for robot in [r for r in ("test_spin", "test_leak", None) if NAMES[r] in OFFENDERS]:
                account, _ = await connect_with_password(platform)
                if robot is not None:
                    with platform.sessions.begin() as db:
                        account_repo.save_portfolio(db, account, True, [_robot(robot)])
                # Not its order updates and errors (three messages per flood order): this process also
                # runs the supervisor and the quiet agents' fill clock; no platform part reads them.
                offenders[robot or "flood"] = await Trader(nc, account).listen(orders=False)
            if "flood" in offenders:
                flood = offenders["flood"]
                await flood.wait_running(timeout=40)
                await flood_orders(str(platform.settings.nats_url), flood.account, FLOOD)
            for name, trader in offenders.items():
                await until(lambda t=trader: _state(platform, t.account)[0] == "quarantined", 60,  # type: ignore[misc]
                            f"{name} to be quarantined")  # fmt: skip

        offending = asyncio.ensure_future(offend())
        noisy = await clock.latencies(quiet, ROUNDS, until_done=offending)
        await offending
        for name, trader in offenders.items():
            _, reason = _state(platform, trader.account)
            assert expected[name] in reason, (name, reason)
        for trader in quiet:
            assert _state(platform, trader.account) == ("active", "")
        after = await clock.latencies(quiet, ROUNDS)
        flood_fills = len(offenders["flood"].fills) if "flood" in offenders else 0
        ratio = statistics.median(noisy.samples) / statistics.median(baseline.samples)
        print(
            f"\nquiet agents' order latency (runtime {supervisor.runtime.name}, offenders "
            f"{','.join(sorted(OFFENDERS)) or 'none'}):\n"
            f"  alone: {baseline}\n  beside the offenders: {noisy}\n  after their quarantine: {after}\n"
            f"  beside / alone p50: {ratio:.2f}; "
            f"flood orders filled: {flood_fills} of {FLOOD}"
        )  # fmt: skip
        for name, trader in offenders.items():
            print(f"  {name}: {_state(platform, trader.account)[1]}")
