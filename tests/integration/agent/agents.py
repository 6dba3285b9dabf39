"""Helpers of the agent tests: a platform database with accounts at a real simbroker, an in-process
supervisor that runs real ``mtrobot agent`` processes, and a trader's view of the bus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client

from mtrobot.bus import subjects
from mtrobot.settings import Settings
from mtrobot.storage import accounts as account_repo
from mtrobot.storage import orders as order_repo
from mtrobot.storage import traders as trader_repo
from mtrobot.storage.db import make_engine, session_factory, upgrade_head
from mtrobot.supervisor.runtime import AgentRuntime, LocalRuntime
from mtrobot.supervisor.service import Supervisor, SupervisorOptions
from mtrobot.vault import Vault, load_keyring
from mtrobot.web.credentials import to_columns


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait for ``predicate``; returns the seconds it took, fails the test after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


@dataclass
class Platform:
    settings: Settings
    sim: Any
    trader_id: str = ""

    def __post_init__(self) -> None:
        self.settings.ensure_dirs()
        shutil.copy(self.sim.run_file, self.settings.run_dir / "simbroker.json")
        upgrade_head(self.settings.resolved_database_url)
        self.engine = make_engine(self.settings.resolved_database_url)
        self.sessions = session_factory(self.engine)
        self.vault = Vault(load_keyring(self.settings))
        self.trader_id = f"trd_{secrets.token_hex(4)}"
        with self.sessions.begin() as db:
            trader_repo.add_trader(db, self.trader_id, f"{self.trader_id}@example.com", "T", "x")

    async def connect_account(self) -> tuple[str, int]:
        """A new account at the simulator, stored as the web stores one; returns (account id, login)."""
        password = secrets.token_urlsafe(12)
        login = await self.sim.admin().create_account(
            server=self.sim.servers[0], password=password, investor_password=secrets.token_urlsafe(12),
            balance=100_000.0, currency="USD", leverage=100, name="agent test",
        )  # fmt: skip
        account = f"acct-{secrets.token_hex(4)}"
        sealed = to_columns(self.vault.seal(account, password))
        with self.sessions.begin() as db:
            account_repo.add_account(db, account_id=account, trader_id=self.trader_id,
                                     server=self.sim.servers[0], login=login, sealed=sealed)  # fmt: skip
        return account, login

    def remove_account(self, account: str) -> None:
        with self.sessions.begin() as db:
            assert account_repo.remove_account(db, self.trader_id, account)

    def supervisor(self, runtime: AgentRuntime | None = None, **options: Any) -> Supervisor:
        opts = SupervisorOptions(**{"poll_s": 0.2, "stop_grace_s": 10.0, **options})
        return Supervisor(self.settings, runtime or LocalRuntime(), opts, nats_url=self.settings.nats_url)

    def activity(self, account: str) -> list[Any]:
        """The account's activity log, newest first, as the web reads it."""
        with self.sessions() as db:
            return list(order_repo.activity_of(db, account))

    def close(self) -> None:
        self.engine.dispose()


@contextlib.asynccontextmanager
async def running(supervisor: Supervisor, stop_timeout: float = 30.0) -> AsyncIterator[Supervisor]:
    """``supervisor`` running its loop for the block, stopped (its agents with it) when the block ends."""
    task = asyncio.create_task(supervisor.run())
    try:
        yield supervisor
    finally:
        supervisor.stop()
        await asyncio.wait_for(task, stop_timeout)


@dataclass
class Trader:
    """What a trader sees of one account on the bus."""

    nc: Client
    account: str
    fills: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: list[dict[str, Any]] = field(default_factory=list)

    async def listen(self, orders: bool = True) -> Trader:
        """Collect the account's fills and heartbeats, and (``orders``) its order updates and errors."""
        for subject, into in (
            (f"broker.fill.{self.account}.>", self.fills),
            (f"broker.order.{self.account}.>", self.updates),
            (f"broker.error.{self.account}.>", self.errors),
            (subjects.agent_heartbeat(self.account), self.heartbeats),
        ):
            if not orders and into is not self.fills and into is not self.heartbeats:
                continue

            async def collect(msg: Any, into: list[dict[str, Any]] = into) -> None:
                into.append(json.loads(msg.data))

            await self.nc.subscribe(subject, cb=collect)
        return self

    async def buy(self, symbol: str = "EURUSD", volume: float = 0.01, order_id: str | None = None) -> str:
        order_id = order_id or "t" + uuid.uuid4().hex[:12]
        request = {"order_id": order_id, "account": self.account, "symbol": symbol, "order_type": "buy",
                   "volume": volume}  # fmt: skip
        headers = {"Nats-Msg-Id": f"{self.account}/{order_id}"}
        js = self.nc.jetstream(timeout=5)
        await js.publish(subjects.orders_submitted(self.account, symbol), json.dumps(request).encode(),
                         headers=headers)  # fmt: skip
        return order_id

    async def close(self, position: int, symbol: str = "EURUSD", order_id: str | None = None) -> str:
        order_id = order_id or "c" + uuid.uuid4().hex[:12]
        request = {"order_id": order_id, "account": self.account, "action": "close", "symbol": symbol,
                   "position": position}  # fmt: skip
        headers = {"Nats-Msg-Id": f"{self.account}/{order_id}"}
        js = self.nc.jetstream(timeout=5)
        await js.publish(subjects.orders_submitted(self.account, symbol), json.dumps(request).encode(),
                         headers=headers)  # fmt: skip
        return order_id

    async def control(self, cmd: str, timeout: float = 5.0, **extra: Any) -> dict[str, Any]:
        payload = json.dumps({"cmd": cmd, **extra}).encode()
        reply = await self.nc.request(subjects.agent_control(self.account), payload, timeout=timeout)
        result: dict[str, Any] = json.loads(reply.data)
        return result

    async def wait_running(self, timeout: float = 40.0) -> float:
        """Seconds until the agent answers ``status`` as running with its broker session connected."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                reply = await self.control("status", timeout=0.5)
                if reply["state"] == "running" and self.connected():
                    return time.monotonic() - start
            except Exception:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"the agent of {self.account} did not run within {timeout} s")

    def connected(self) -> bool:
        return bool(self.heartbeats) and self.heartbeats[-1]["connection"] == "connected"

    def filled(self, order_id: str) -> list[dict[str, Any]]:
        return [f for f in self.fills if f["order_id"] == order_id]

    def states(self, order_id: str) -> list[str]:
        return [u["state"] for u in self.updates if u["order_id"] == order_id]
