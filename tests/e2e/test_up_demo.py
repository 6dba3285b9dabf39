"""``mtrobot up`` on a fresh data dir: the URL and the demo login are printed and the login works."""

from __future__ import annotations

import pytest

pytest.importorskip("mtrobot.sim.service", reason="the simulator has not landed yet")

import re

import httpx

from tests.e2e.proc_tools import start_up, wait_until

LOGIN_RE = re.compile(r"web\s+(http://[\d.:]+)\s+\(demo login: (\S+) / (\S+)\)")


def test_up_prints_the_url_and_a_demo_login_that_signs_in_to_a_simulated_account(data_dir) -> None:
    proc = start_up(data_dir)
    log = data_dir.parent / "up.log"
    try:
        wait_until(lambda: "Press Ctrl-C" in log.read_text(), 60, "mtrobot up ready", proc)
        match = LOGIN_RE.search(log.read_text())
        assert match, log.read_text()
        url, email, password = match.groups()
        client = httpx.Client(base_url=url, timeout=5)

        def demo_ready() -> bool:
            try:
                r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
                return r.status_code == 200 and [a["id"] for a in client.get("/api/v1/accounts").json()] == [
                    "demo"
                ]
            except httpx.HTTPError:
                return False

        wait_until(demo_ready, 60, "the demo account", proc)
        assert client.get("/api/v1/accounts/demo/portfolio").json()["active"] is True
    finally:
        proc.terminate()
        proc.wait(30)
