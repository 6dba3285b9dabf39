"""``mtrobot up`` on its embedded bus (JWT accounts): the demo agent is killed (kill -9) while an order it was
handed is fetched and not acknowledged; the agent the supervisor starts again takes that order over at once,
through its own bus identity (the reset of its own consumer), and fills it once, long before the consumer's
30 s ``ack_wait`` would have brought it back."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from mtrobot.bus import layout, subjects
from mtrobot.bus.connect import ORDER_CONSUMER_ACK_WAIT_S, connect
from tests.e2e.proc_tools import start_up, wait_until
from tests.e2e.test_up_order_path import _until, open_symbol
from tests.e2e.up_platform import running_pid


async def _until_async(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_kill_9_of_the_agent_with_an_order_fetched_fills_it_within_seconds_once(data_dir: Path) -> None:
    symbol = open_symbol()
    if symbol is None:
        pytest.skip("the simulated market is in its daily maintenance break (5 minutes)")
    proc = start_up(data_dir)
    run = data_dir / "run"
    agent_log = data_dir / "logs" / "agent-demo.log"
    try:
        admin = run / "nats-admin.creds"
        wait_until(lambda: (run / "nats.url").exists() and admin.exists(), 60, "the embedded bus", proc)
        nc = await connect((run / "nats.url").read_text().strip(), "tests-admin", creds=str(admin))
        try:
            js = nc.jetstream(timeout=5)
            fills: list[dict[str, Any]] = []

            async def on_fill(msg: Any) -> None:
                fills.append(json.loads(msg.data) | {"_at": time.monotonic()})

            await nc.subscribe("broker.fill.demo.>", cb=on_fill)
            durable = layout.agent_consumer("demo")
            warm = "w" + uuid.uuid4().hex[:10]  # the agent trades: its session is up, its intake runs
            body = {
                "order_id": warm,
                "account": "demo",
                "symbol": symbol,
                "order_type": "buy",
                "volume": 0.01,
            }
            wait_until(lambda: running_pid(data_dir, "demo") is not None, 90, "the demo agent", proc)
            await js.publish(subjects.orders_submitted("demo", symbol), json.dumps(body).encode())
            assert await _until(lambda: any(f["order_id"] == warm for f in fills), 60), agent_log.read_text()
            pid = running_pid(data_dir, "demo")
            assert pid is not None

            async def no_pull_waiting() -> bool:
                return not (await js.consumer_info(subjects.ORDERS_STREAM, durable)).num_waiting

            async def all_acknowledged() -> bool:
                info = await js.consumer_info(subjects.ORDERS_STREAM, durable)
                return not info.num_pending and not info.num_ack_pending

            oid = "k" + uuid.uuid4().hex[:10]
            order = json.dumps(body | {"order_id": oid}).encode()
            os.kill(pid, signal.SIGSTOP)  # it takes nothing more; its last pull request expires in 1 s
            try:
                assert await _until_async(no_pull_waiting, 10)
                await js.publish(subjects.orders_submitted("demo", symbol), order)
                dead = await js.pull_subscribe(subjects.orders_submitted_filter("demo"), durable=durable,
                                               stream=subjects.ORDERS_STREAM)  # fmt: skip
                fetched = await dead.fetch(1, timeout=5)  # as the killed run had it: fetched, never acked
                handed = time.monotonic()
            finally:
                os.kill(pid, signal.SIGKILL)  # also when a step above failed: never left stopped
            killed = time.monotonic()
            assert oid in fetched[0].data.decode()
            wait_s = ORDER_CONSUMER_ACK_WAIT_S + 15
            assert await _until(lambda: any(f["order_id"] == oid for f in fills), wait_s), (
                agent_log.read_text()
            )
            filled = next(f["_at"] for f in fills if f["order_id"] == oid)
            print(f"\nkill -9 -> fill of the order the dead agent held: {filled - killed:.2f} s "
                  f"(ack_wait {ORDER_CONSUMER_ACK_WAIT_S:.0f} s)")  # fmt: skip
            assert filled - handed < ORDER_CONSUMER_ACK_WAIT_S - 10, "the order waited for ack_wait"
            assert await _until_async(all_acknowledged, 15)  # nothing left that could execute it again
            assert len([f for f in fills if f["order_id"] == oid]) == 1
            text = agent_log.read_text()
            assert "delivered again now, in order" in text
            assert "ermissions violation" not in text
        finally:
            await nc.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
