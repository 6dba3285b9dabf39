"""A throw-away fleet of agents for ``bench density`` and ``bench storm``: embedded NATS, the simulator, a
database with N accounts (each a real account at the simulator, its password sealed as the web seals it)
and ``mtrobot supervisor`` as a real child process running one real agent per account, in the runtime it
chooses on this host. Everything lives in a temporary data dir and is stopped and removed on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from mtrobot.bench.rig import _spawn, _wait_for
from mtrobot.bus.connect import connect, provision
from mtrobot.bus.server import EmbeddedNats
from mtrobot.proc import stop_process
from mtrobot.settings import Settings
from mtrobot.sim.admin import SimAdmin
from mtrobot.sim.config import always_open, default_config
from mtrobot.supervisor.quarantine import HEARTBEATS

HEALTHY_WITHIN_S = 12.0
"""A heartbeat (every 5 s) younger than this, saying running and connected, is a healthy agent."""


@dataclass
class Beat:
    at: float
    """time.monotonic() when it arrived."""
    body: dict[str, Any]


@dataclass
class Fleet:
    nc: Client
    settings: Settings
    admin: SimAdmin
    servers: list[str]
    accounts: dict[str, str] = field(default_factory=dict)
    """account id -> its trade server."""
    beats: dict[str, list[Beat]] = field(default_factory=dict)
    supervisor: asyncio.subprocess.Process | None = None
    started_at: float = 0.0

    def last(self, account: str) -> Beat | None:
        beats = self.beats.get(account)
        return beats[-1] if beats else None

    def healthy(self, account: str, now: float | None = None) -> bool:
        beat = self.last(account)
        now = time.monotonic() if now is None else now
        return (
            beat is not None
            and now - beat.at < HEALTHY_WITHIN_S
            and beat.body.get("state") == "running"
            and beat.body.get("connection") == "connected"
        )

    def first_connected(self, account: str) -> float | None:
        for beat in self.beats.get(account, []):
            if beat.body.get("connection") == "connected":
                return beat.at
        return None

    def agents_file(self) -> dict[str, Any]:
        try:
            data = json.loads((self.settings.run_dir / "agents.json").read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    async def _on_beat(self, msg: Msg) -> None:
        account = msg.subject.rsplit(".", 1)[-1]
        with contextlib.suppress(ValueError):
            body = json.loads(msg.data)
            if isinstance(body, dict):
                self.beats.setdefault(account, []).append(Beat(time.monotonic(), body))

    async def start_supervisor(self) -> None:
        self.started_at = time.monotonic()
        self.supervisor = await _spawn(self.settings.data_dir, str(self.settings.nats_url), "supervisor")

    async def stop_supervisor(self, grace: float = 60.0) -> None:
        if self.supervisor is not None:
            await stop_process(self.supervisor, grace)
            self.supervisor = None


def _store_accounts(settings: Settings, created: list[tuple[str, str, int, str]]) -> None:
    """The accounts as the web stores them: a trader, and each account's password sealed to its id."""
    from mtrobot.storage import accounts as account_repo
    from mtrobot.storage import traders as trader_repo
    from mtrobot.storage.db import make_engine, session_factory, upgrade_head
    from mtrobot.vault import Vault, load_keyring
    from mtrobot.web.credentials import to_columns

    upgrade_head(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    vault = Vault(load_keyring(settings))
    try:
        with session_factory(engine).begin() as db:
            trader = ""
            for i, (account, server, login, password) in enumerate(created):
                if i % account_repo.MAX_ACCOUNTS_PER_TRADER == 0:  # a trader has at most three
                    trader = f"trd_bench{i:05d}"
                    trader_repo.add_trader(db, trader, f"{trader}@bench.invalid", "Bench", "x")
                sealed = to_columns(vault.seal(account, password))
                account_repo.add_account(db, account_id=account, trader_id=trader, server=server,
                                         login=login, sealed=sealed, label="bench")  # fmt: skip
    finally:
        engine.dispose()


@contextlib.asynccontextmanager
async def agent_fleet(count: int, startup_timeout: float = 60.0) -> AsyncIterator[Fleet]:
    """``count`` accounts spread over the simulator's servers, stored; the supervisor not started yet."""
    tmp = tempfile.mkdtemp(prefix="mtrobot-bench-")
    data_dir = Path(tmp)
    settings = Settings(data_dir=data_dir)
    settings.ensure_dirs()
    nats = EmbeddedNats(data_dir / "nats")
    procs: list[asyncio.subprocess.Process] = []
    nc: Client | None = None
    fleet: Fleet | None = None
    try:
        url = await nats.start()
        settings = Settings(data_dir=data_dir, nats_url=url)
        nc = await connect(url, "bench")
        await provision(nc.jetstream(timeout=10))
        config = data_dir / "broker.json"
        config.write_text(always_open(default_config(42)).model_dump_json())
        sim = await _spawn(data_dir, url, "simbroker", "--port", "0", "--config", str(config))
        procs.append(sim)
        run_file = settings.simbroker_file

        async def sim_ready() -> bool:
            return run_file.exists()

        await _wait_for(sim_ready, "simbroker", startup_timeout, sim)
        admin = SimAdmin.from_run_file(run_file)
        servers = [
            str(s["name"] if isinstance(s, dict) else s) for s in json.loads(run_file.read_text())["servers"]
        ]
        created = []
        for i in range(count):
            server, password = servers[i % len(servers)], secrets.token_urlsafe(12)
            login = await admin.create_account(
                server=server, password=password, investor_password=secrets.token_urlsafe(12),
                balance=100_000.0, currency="USD", leverage=100, name=f"bench {i}",
            )  # fmt: skip
            created.append((f"bench-{i:04d}", server, login, password))
        await asyncio.to_thread(_store_accounts, settings, created)
        fleet = Fleet(nc, settings, admin, servers, {a: s for a, s, _, _ in created})
        await nc.subscribe(HEARTBEATS, cb=fleet._on_beat)
        yield fleet
    finally:
        if fleet is not None:
            await fleet.stop_supervisor()
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()
        for proc in reversed(procs):
            await stop_process(proc)
        await nats.stop()
        shutil.rmtree(tmp, ignore_errors=True)
