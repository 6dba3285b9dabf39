"""A stand-in for the account agents until ``mtrobot agent`` and the supervisor are on main (issue 10a).

For each account whose portfolio is active it runs what an agent runs for the dashboard: the real MT5
connector as its own process, handed its credentials on stdin as the supervisor does
(``credentials_handoff``), and the real aggregator (``mtrobot.agent.aggregator``) on the simulator, fed
the connector's fills and order updates from the bus, publishing ``snapshot.{account}`` + KV like an agent.
Robots do not run here.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtrobot.agent.aggregator import Aggregator
from mtrobot.agent.snapshot_io import NatsSnapshotSink, TerminalReader
from mtrobot.broker.backends import open_terminal
from mtrobot.bus import subjects
from mtrobot.bus.codec import decode
from mtrobot.bus.connect import connect
from mtrobot.connector.runner import sim_endpoint
from mtrobot.core.events import Fill, OrderUpdate
from mtrobot.proc import inherited_env, spawn_mtrobot, stop_process
from mtrobot.settings import Settings
from mtrobot.storage import accounts as account_repo
from mtrobot.supervisor.handoff import credentials_handoff
from mtrobot.web.credentials import sealed_of
from mtrobot.web.state import AppState


@dataclass
class RunningAgent:
    account: str
    process: asyncio.subprocess.Process
    aggregator: Aggregator
    terminal: Any
    nc: Any
    subs: list[Any] = field(default_factory=list)


class StandInAgents:
    def __init__(self, settings: Settings, state: AppState, log_dir: Path) -> None:
        self.settings, self.state, self.log_dir = settings, state, log_dir
        self.running: dict[str, RunningAgent] = {}
        self.errors: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="standin-agents")
        self._watch: asyncio.Future[None] | None = None

    def start(self) -> StandInAgents:
        self._thread.start()
        self._watch = asyncio.run_coroutine_threadsafe(self._watch_accounts(), self._loop)
        return self

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        asyncio.run_coroutine_threadsafe(self._stop_all(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _active_accounts(self) -> list[tuple[str, int, str, str]]:
        with self.state.sessions() as db:
            found = []
            for account in account_repo.all_accounts(db):
                portfolio = account_repo.portfolio_of(db, account.id)
                if portfolio.active:
                    password = self.state.vault.open(account.id, sealed_of(account))
                    found.append((account.id, int(account.login), str(account.server), password))
            db.rollback()
            return found

    async def _watch_accounts(self) -> None:
        while True:
            for account, login, server, password in await asyncio.to_thread(self._active_accounts):
                if account not in self.running:
                    try:
                        self.running[account] = await self._start(account, login, server, password)
                    except Exception as exc:
                        self.errors.append(f"{account}: {exc!r}")
            await asyncio.sleep(0.2)

    async def _start(self, account: str, login: int, server: str, password: str) -> RunningAgent:
        env = inherited_env() | {
            "MTROBOT_DATA_DIR": str(self.settings.data_dir),
            "MTROBOT_NATS_URL": self.settings.nats_url or "",
            "MTROBOT_DATABASE_URL": self.settings.resolved_database_url,
        }
        handoff = await credentials_handoff(self.settings, account, wait_s=10)
        args = ("connector", "--account", account, "--health-port", "0")
        process = await spawn_mtrobot(args, env=env, log_path=self.log_dir / f"connector-{account}.log",
                                      stdin=handoff)  # fmt: skip
        host, port = sim_endpoint(self.settings)
        terminal = open_terminal("sim", host=host, port=port)
        if not await terminal.initialize(login=login, password=password, server=server):
            raise RuntimeError("the stand-in agent could not log in at the simulator")
        nc = await connect(
            self.settings.nats_url or "", f"standin-agent-{account}", max_reconnect_attempts=-1
        )
        aggregator = Aggregator(
            account, TerminalReader(terminal), NatsSnapshotSink(nc, account), poll_idle_s=2
        )
        agent = RunningAgent(account, process, aggregator, terminal, nc)

        async def on_fill(msg: Any) -> None:
            aggregator.on_fill(decode(Fill, msg.data))

        async def on_order(msg: Any) -> None:
            aggregator.on_order_update(decode(OrderUpdate, msg.data))

        agent.subs.append(await nc.subscribe(subjects.broker_fill_of(account), cb=on_fill))
        agent.subs.append(await nc.subscribe(subjects.broker_order_of(account), cb=on_order))
        await aggregator.start()
        return agent

    async def _stop_all(self) -> None:
        for agent in self.running.values():
            with contextlib.suppress(Exception):
                await agent.aggregator.stop()
            await stop_process(agent.process, grace=10)
            with contextlib.suppress(Exception):
                await agent.terminal.shutdown()
            with contextlib.suppress(Exception):
                await agent.nc.close()
        self.running.clear()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
