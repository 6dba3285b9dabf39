"""``mtrobot connector`` stand-alone: password on stdin, health endpoints, an order filled, a clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from nats.aio.client import Client

from mtrobot.bus import subjects
from mtrobot.settings import Settings

from .simfixtures import SimBrokerProcess
from .test_connector_bus import Outputs


async def test_the_stand_alone_connector_takes_its_password_on_stdin_serves_health_and_fills(
    nats_url: str, nc: Client, tmp_path: Path, simbroker: SimBrokerProcess
) -> None:
    login = await simbroker.admin().create_account(server=simbroker.servers[0], password="Cli-pass1",
                                                   investor_password="Cli-inv1")  # fmt: skip
    account = "cli-" + uuid.uuid4().hex[:6]
    data = tmp_path / "data"
    run_file = Settings(data_dir=data).simbroker_file
    run_file.parent.mkdir(parents=True)
    run_file.write_text(simbroker.run_file.read_text())
    out = Outputs()
    await out.subscribe(nc, account)
    env = dict(os.environ, MTROBOT_NATS_URL=nats_url, MTROBOT_DATA_DIR=str(data))
    env.pop("MT5_PASSWORD", None)
    args = [
        "--account",
        account,
        "--health-port",
        "0",
        "--login",
        str(login),
        "--server",
        simbroker.servers[0],
    ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mtrobot", "connector", *args, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(b'{"password": "Cli-pass1"}\n')
    await proc.stdin.drain()
    proc.stdin.close()
    announce = data / "run" / f"connector-{account}.json"
    try:
        assert await out.until(lambda g: announce.exists(), 60)
        port = json.loads(announce.read_text())["health_port"]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            assert (await http.get("/healthz")).status_code == 200

            async def ready() -> Any:
                return (await http.get("/readyz")).status_code == 200

            for _ in range(600):  # generous: a loaded machine starts processes slowly
                if await ready():
                    break
                await asyncio.sleep(0.05)
            assert await ready()
            oid = "cli" + uuid.uuid4().hex[:8]
            body = {
                "order_id": oid,
                "account": account,
                "symbol": "EURUSD",
                "order_type": "buy",
                "volume": 0.01,
            }
            await nc.jetstream().publish(
                subjects.orders_submitted(account, "EURUSD"), json.dumps(body).encode()
            )
            assert await out.until(lambda g: any(f["order_id"] == oid for f in g["fill"]), 15)
            metrics = (await http.get("/metrics")).text
            assert 'mtrobot_connector_orders_total{account="' + account + '",state="filled"} 1.0' in metrics
            # A market order reads no bars: numpy (~10 MB) is never mapped by the connector's process.
            assert "numpy" not in Path(f"/proc/{proc.pid}/maps").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 20)
        log = (await proc.stderr.read()).decode()
    assert code == 0, log[-3000:]
    assert "Cli-pass1" not in log
