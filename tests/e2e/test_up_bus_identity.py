"""``mtrobot up`` on its embedded bus (JWT accounts): anonymous clients are refused, the operator's
``run/nats-admin.creds`` (0600) sees the platform, and an order placed there fills through the demo
agent, which the supervisor started with its own bus identity; ``mtrobot status`` uses the operator's."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest

from mtrobot.bus import subjects
from mtrobot.bus.connect import connect
from tests.e2e.proc_tools import mtrobot_command, start_up, wait_until
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
