"""``mtrobot up`` runs a connector for the demo account: an order published by hand on the bus fills, a
repeated order_id is a duplicate, a bad volume is a validation error, the audit stream names the order, and
the recorder writes the fill into executions."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from mtrobot.bus import subjects
from tests.e2e.proc_tools import start_up
from tests.integration.recorder.helpers import caught_up, executions_rows, until


async def _until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


def open_symbol() -> str | None:
    """A symbol the embedded simulator trades for the next minutes: EURUSD on weekdays, BTCUSD at weekends,
    none in the server's short daily break."""
    from mtrobot.sim.clock import ServerZone
    from mtrobot.sim.config import default_config
    from mtrobot.sim.schedule import Schedule

    server = default_config(42).servers[0]
    schedule = Schedule(server)
    now = ServerZone(server.timezone).to_server_ms(int(time.time() * 1000))
    for name in ("EURUSD", "BTCUSD"):
        spec = server.symbol(name)
        if spec and all(schedule.is_open(now + m * 60_000, weekends=spec.weekend_trading) for m in range(3)):
            return name
    return None


async def test_an_order_published_by_hand_fills_through_the_demo_connector(
    nats_url: str, nc: Client, data_dir: Path
) -> None:
    symbol = open_symbol()
    if symbol is None:
        pytest.skip("the simulated market is in its daily maintenance break (5 minutes)")
    proc = start_up(data_dir, env={"MTROBOT_NATS_URL": nats_url})
    js = nc.jetstream()
    got: dict[str, list[dict[str, Any]]] = {"fill": [], "order": [], "error": []}
    for kind, items in got.items():

        async def cb(msg: Any, items: list[dict[str, Any]] = items) -> None:
            items.append(json.loads(msg.data))

        await nc.subscribe(f"broker.{kind}.demo.>", cb=cb)
    try:
        consumers: list[str] = []

        async def find() -> None:
            for info in await js.consumers_info(subjects.ORDERS_STREAM):
                consumers.append(info.config.filter_subject or "")

        deadline = time.monotonic() + 90
        while "orders.submitted.demo.>" not in consumers and time.monotonic() < deadline:
            await find()
            await asyncio.sleep(0.5)
        assert "orders.submitted.demo.>" in consumers, (data_dir.parent / "up.log").read_text()[-3000:]

        oid = "e2e" + uuid.uuid4().hex[:10]
        req = {"order_id": oid, "account": "demo", "symbol": symbol, "order_type": "buy", "volume": 0.01}
        await js.publish(subjects.orders_submitted("demo", symbol), json.dumps(req).encode())
        assert await _until(lambda: any(f["order_id"] == oid for f in got["fill"]), 30), got["error"][-1:]
        await js.publish(subjects.orders_submitted("demo", symbol), json.dumps(req).encode())
        assert await _until(
            lambda: any(u["order_id"] == oid and u["state"] == "duplicate" for u in got["order"]), 15
        )
        assert len([f for f in got["fill"] if f["order_id"] == oid]) == 1

        bad = dict(req, order_id="e2e" + uuid.uuid4().hex[:10], volume=0.001)
        await js.publish(subjects.orders_submitted("demo", symbol), json.dumps(bad).encode())
        assert await _until(lambda: any(e["order_id"] == bad["order_id"] for e in got["error"]), 15)
        assert [e["category"] for e in got["error"] if e["order_id"] == bad["order_id"]] == ["validation"]

        sub = await js.subscribe(subjects.audit_broker("demo"), ordered_consumer=True)
        seen = 0
        while True:
            try:
                msg = await sub.next_msg(timeout=2)
            except Exception:
                break
            seen += oid in msg.data.decode()
        assert seen > 0
        assert await until(lambda: caught_up(js), 30)  # the recorder has the fill
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    rows = await executions_rows(data_dir / "chdb", "demo")
    assert [r["order_id"] for r in rows if r["order_id"] == oid] == [oid]
