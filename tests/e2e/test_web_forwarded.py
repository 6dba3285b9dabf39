"""``mtrobot web`` as served (uvicorn): a client on loopback cannot dodge the address limit with a forged
X-Forwarded-For (uvicorn's own proxy-header handling would believe it from 127.0.0.1)."""

from __future__ import annotations

import os
import secrets
import subprocess

import httpx

from mtrobot.bus.server import free_port
from tests.e2e.proc_tools import mtrobot_command, wait_until

PASSWORD = "correct horse battery"


def test_a_forged_forwarded_for_does_not_give_a_new_address_per_request(data_dir) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTROBOT_")}
    env.update(MTROBOT_DATA_DIR=str(data_dir), MTROBOT_NATS_URL="nats://127.0.0.1:1")
    log = open(data_dir.parent / "web.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(mtrobot_command("web", "--port", str(port)), stdout=log, stderr=subprocess.STDOUT,
                            env=env)  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

            def up() -> bool:
                try:
                    return http.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(up, 60, "the web part", proc)
            victims = []
            for i in range(5):
                email = f"x{i}-{secrets.token_hex(3)}@example.com"
                assert (
                    http.post(
                        "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
                    ).status_code
                    == 201
                )
                victims.append(email)
            codes = []
            for i in range(22):
                forged = {"X-Forwarded-For": f"198.51.100.{i}"}
                body = {"email": victims[i % 5], "password": "wrong password"}
                codes.append(http.post("/api/v1/auth/login", json=body, headers=forged).status_code)
            assert codes[:20] == [401] * 20 and codes[20:] == [429, 429], codes
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
