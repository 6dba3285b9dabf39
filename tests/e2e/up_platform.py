"""One ``mtrobot up`` with its web API signed in as the demo trader, and what the e2e tests read of it; and
:class:`SharedUp`, which lets the tests of one module share a start of the whole platform (20-40 s on
the shared 2-core machine) instead of paying one each."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mtrobot.sim.admin import SimAdmin
from tests.e2e.proc_tools import alive, kept_running, start_up, wait_until

LOGIN_RE = re.compile(r"web\s+(http://[\d.:]+)\s+\(demo login: (\S+) / (\S+)\)")


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(10)


@dataclass
class Up:
    """A running ``mtrobot up`` and a client signed in with the demo login it printed."""

    proc: subprocess.Popen[bytes]
    client: httpx.Client
    csrf: str
    data_dir: Path
    accounts_at_sign_in: list[str]
    """The demo trader's accounts when the printed login first worked."""


def start_and_sign_in(data_dir: Path) -> Up:
    """``mtrobot up`` and a client signed in as the demo trader; an ``up`` that never got ready is stopped."""
    proc = start_up(data_dir)
    try:
        log = data_dir.parent / "up.log"
        wait_until(lambda: "Press Ctrl-C" in log.read_text(), 90, "mtrobot up ready", proc)
        match = LOGIN_RE.search(log.read_text())
        assert match, log.read_text()
        url, email, password = match.groups()
        client = httpx.Client(base_url=url, timeout=10)
        csrf: list[str] = []
        accounts: list[str] = []

        def signed_in() -> bool:
            try:
                r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
                if r.status_code != 200:
                    return False
                csrf[:] = [r.json()["csrf_token"]]
                accounts[:] = [a["id"] for a in client.get("/api/v1/accounts").json()]
            except httpx.HTTPError:
                return False
            return bool(accounts)  # the demo account exists from the first start on

        wait_until(signed_in, 60, "the demo sign-in and its account", proc)
    except BaseException:
        stop(proc)
        raise
    return Up(proc, client, csrf[0], data_dir, accounts)


class SharedUp:
    """One ``mtrobot up`` for the tests of a module, started when a test first asks for it and again after
    a test stopped it. A test that changes what later tests rely on (accounts, an attack on the bus, a
    restart) calls :meth:`touch`; a test that needs the platform as a fresh data dir starts it asks
    ``get(pristine=True)`` and then gets a new platform on a new data dir if one was touched."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self._factory = factory
        self.data_dir = self._new_dir()
        self.current: Up | None = None
        self.touched = False
        self.starts = 0

    def _new_dir(self) -> Path:
        data = self._factory.mktemp("up") / "data"
        data.mkdir()
        return data

    def get(self, *, pristine: bool = False) -> Up:
        if pristine and self.touched:
            self.close()
            self.data_dir, self.touched = self._new_dir(), False
        if self.current is None or self.current.proc.poll() is not None:
            (self.data_dir.parent / "up.log").write_text("")
            self.current = start_and_sign_in(self.data_dir)
            kept_running(self.current.proc)
            self.starts += 1
        return self.current

    def touch(self) -> None:
        self.touched = True

    def stop(self) -> int:
        """Stop the running ``up`` (SIGTERM); its exit code."""
        assert self.current is not None
        code = stop(self.current.proc)
        self.current.client.close()
        self.current = None
        return code

    def close(self) -> None:
        if self.current is not None:
            self.stop()


def agents(data_dir: Path) -> dict[str, dict[str, Any]]:
    try:
        document = json.loads((data_dir / "run" / "agents.json").read_text())
    except (OSError, ValueError):
        return {}
    return {a["account"]: a for a in document["agents"]}


def running_pid(data_dir: Path, account: str) -> int | None:
    agent = agents(data_dir).get(account)
    if agent and agent["state"] == "running" and agent["pid"] and alive(agent["pid"]):
        return int(agent["pid"])
    return None


def open_sim_account(data_dir: Path) -> tuple[str, int, str]:
    run_file = data_dir / "run" / "simbroker.json"
    server = json.loads(run_file.read_text())["servers"][0]
    server = server["name"] if isinstance(server, dict) else server
    password = "Pw-" + secrets.token_urlsafe(10)
    login = asyncio.run(
        SimAdmin.from_run_file(run_file).create_account(
            server=server, password=password, investor_password=secrets.token_urlsafe(10),
            balance=50_000.0, currency="USD", leverage=100, name="API trader",
        )
    )  # fmt: skip
    return server, int(login), password


def place_and_fill(client: httpx.Client, csrf: str, account: str, symbol: str, timeout: float) -> float:
    """Seconds from the order's POST until the API shows it filled."""
    start = time.monotonic()
    r = client.post(f"/api/v1/accounts/{account}/orders", headers={"X-CSRF-Token": csrf},
                    json={"symbol": symbol, "order_type": "buy", "volume": 0.01})  # fmt: skip
    assert r.status_code == 202, r.text
    order_id = r.json()["order_id"]

    def filled() -> bool:
        state = client.get(f"/api/v1/accounts/{account}/orders/{order_id}").json()["state"]
        assert state not in ("rejected", "expired", "cancelled"), state
        return bool(state == "filled")

    wait_until(filled, timeout, f"order {order_id} filled")
    return time.monotonic() - start
