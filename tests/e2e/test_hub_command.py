from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess

import httpx

from mtrobot.bus.connect import connect
from mtrobot.hub.registry import ServiceDirectory
from tests.e2e.proc_tools import mtrobot_command, wait_until


async def _hub_instances(nats_url: str) -> list[int]:
    nc = await connect(nats_url, "test-hub-cmd")
    try:
        return [i.pid for i in await ServiceDirectory(nc.jetstream(timeout=5)).running("hub")]
    finally:
        await nc.close()


def test_mtrobot_hub_serves_the_api_announces_its_url_registers_and_stops_cleanly(data_dir, nats_url) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTROBOT_")}
    env.update(MTROBOT_NATS_URL=nats_url, MTROBOT_DATA_DIR=str(data_dir))
    log = open(data_dir.parent / "hub.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        mtrobot_command("hub", "--port", "0"), stdout=log, stderr=subprocess.STDOUT, env=env
    )
    info = data_dir / "run" / "hub.json"
    try:
        wait_until(info.exists, 30, "hub.json", proc)
        url = json.loads(info.read_text())["url"]
        assert url.startswith("http://127.0.0.1:")  # loopback by default
        token_file = data_dir / "hub.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        with httpx.Client(base_url=url, timeout=5) as anonymous:
            assert anonymous.put("/api/v1/services/connector.cmdtest/config", json={}).status_code == 401
        auth = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
        with httpx.Client(base_url=url, timeout=5, headers=auth) as http:
            wait_until(
                lambda: http.get("/readyz").status_code == 200, 15, "the hub to attach to the bus", proc
            )
            refused = http.put("/api/v1/services/connector.cmdtest/config", json={"order_settings": {"x": 1}})
            assert refused.status_code == 422
            assert refused.json()["errors"][0]["field"] == "order_settings.x"
            assert http.put("/api/v1/services/connector.cmdtest/config", json={}).status_code == 200
            assert "connector" in http.get("/api/v1/schemas").json()
        wait_until(
            lambda: asyncio.run(_hub_instances(nats_url)) == [proc.pid], 10, "the hub's registry entry"
        )

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert not info.exists()
        assert asyncio.run(_hub_instances(nats_url)) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
