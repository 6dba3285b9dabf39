"""``mtrobot supervisor``: one agent per account whose agent should run, read from the database.

Every ``poll_s`` (and at once when an agent exits) it compares the accounts the database says should have an
agent (:func:`mtrobot.storage.accounts.accounts_with_agents`) with the agents it runs:

- a new account gets an agent: a fresh hand-off on its stdin (:mod:`.handoff`), started through the
  runtime (:mod:`.runtime`), after the hub was given the account's portfolio if it had none;
- an account removed, stopped by a person, or whose login or server changed loses its agent (SIGTERM, then
  SIGKILL after a grace period); a changed one gets a new agent in the next round;
- an agent that crashed is started again after a full-jitter exponential backoff
  (:class:`mtrobot.connector.backoff.Backoff`) whose count resets once an agent ran a stable minute;
- an agent that stopped on request (exit 0: control ``stop``) is not restarted until its account leaves and
  re-enters the set (stopped and resumed by a person) or the supervisor restarts.

What runs where is written to ``DATA_DIR/run/agents.json`` for ``mtrobot status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from mtrobot.bus.identity import BusAuthority
from mtrobot.connector.backoff import Backoff
from mtrobot.core.agent import SUPERVISOR_AGENT_GRACE_S
from mtrobot.files import write_atomically
from mtrobot.logging import get_logger
from mtrobot.settings import Settings

from . import activity
from .handoff import AgentRecord, agent_handoff
from .hubseed import HubSeeder
from .quarantine import Quarantine, QuarantinePolicy
from .runtime import AgentLaunch, AgentLimits, AgentProcess, AgentRuntime

log = get_logger(__name__)

AGENTS_FILE = "agents.json"
_PASSED_ENV = ("PATH", "PYTHONPATH", "HOME", "LANG", "LC_ALL", "TZ", "VIRTUAL_ENV", "MTROBOT_FAILPOINTS")
"""The only variables of the supervisor's environment an agent gets (no database URL, no master key)."""


@dataclass(frozen=True)
class SupervisorOptions:
    poll_s: float = 1.0
    stable_s: float = 60.0
    """An agent that ran this long without crashing resets its restart backoff."""
    backoff: Backoff = field(default_factory=lambda: Backoff(0.5, 30.0))
    stop_grace_s: float = SUPERVISOR_AGENT_GRACE_S
    start_concurrency: int = 4
    """How many agents may be starting at once: from the supervisor's preparation (bus identity, hand-off,
    sandbox) until the agent's heartbeat says it runs. An agent's start is mostly CPU (its imports): more at
    once on a small host makes each start slower and the whole fleet no sooner (docs/performance.md)."""
    start_permit_s: float = 20.0
    """An agent still starting after this long no longer holds back the next ones."""
    limits: AgentLimits = field(default_factory=AgentLimits)
    quarantine: QuarantinePolicy = field(default_factory=QuarantinePolicy)


@dataclass
class AgentSlot:
    record: AgentRecord
    process: AgentProcess | None = None
    state: str = "starting"
    """starting, running, backoff, held (stopped on request), stopping."""
    started_at: float = 0.0
    failures: int = 0
    restarts: int = 0
    next_start: float = 0.0
    last_exit: int | None = None
    down_since: float | None = None
    """When it stopped unexpectedly (monotonic): its next start tells the trader it is back."""
    watcher: asyncio.Task[None] | None = None

    def status(self, runtime: str) -> dict[str, Any]:
        return {
            "account": self.record.account,
            "state": self.state,
            "pid": self.process.pid if self.process is not None else None,
            "runtime": runtime,
            "isolation": dict(self.process.isolation) if self.process is not None else {},
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "server": self.record.server,
            "login": self.record.login,
        }


def read_records(settings: Settings) -> dict[str, AgentRecord]:
    """The accounts whose agent should run, with what the supervisor needs of each (blocking: a thread)."""
    from mtrobot.storage import accounts as account_repo
    from mtrobot.storage.db import one_off_session

    with one_off_session(settings.resolved_database_url) as db:
        records = {}
        for row in account_repo.accounts_with_agents(db):
            portfolio = account_repo.portfolio_of(db, row.id)
            document = {
                "active": portfolio.active,
                "robots": portfolio.robots,
                "risk": portfolio.risk or {},
            }
            records[row.id] = AgentRecord(
                row.id, int(row.login), str(row.server), str(row.backend or "sim"),
                str(row.agent_state), str(row.agent_reason or ""), document,
            )  # fmt: skip
        return records


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        runtime: AgentRuntime,
        options: SupervisorOptions | None = None,
        *,
        nats_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.options = options or SupervisorOptions()
        self.nats_url = nats_url or settings.discover_nats_url()
        self.slots: dict[str, AgentSlot] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stops: set[asyncio.Task[None]] = set()
        self._claims = asyncio.Lock()
        """One change of the bus's account claims at a time in this process. BusAuthority holds a file lock
        (flock) across its pushes to the server; a second concurrent start taking it would block the event
        loop, and with it the push the first one awaits."""
        self._hub = HubSeeder(self.nats_url, settings)
        self._status_written = ""
        self.rounds = 0
        self.quarantine = Quarantine(settings, self.options.limits, self.options.quarantine)
        self.quarantine.alarm = self._wake.set  # a flood is judged at once, not at the next round

    # -- the loop ------------------------------------------------------------------------------------

    async def run(self) -> None:
        log.info("supervisor running", runtime=self.runtime.name, database=_safe_url(self.settings))
        await self.quarantine.connect(self.nats_url)
        try:
            while not self._stopping.is_set():
                try:
                    await self.reconcile()
                    self.rounds += 1
                except Exception as exc:  # the database may be busy or migrating: try again next round
                    log.warning("supervisor round failed", error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.options.poll_s)
                self._wake.clear()
        finally:
            await self.shutdown()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def reconcile(self) -> None:
        read_at = time.monotonic()
        wanted = await asyncio.to_thread(read_records, self.settings)
        for account, slot in list(self.slots.items()):
            record = wanted.get(account)
            if record is None or (record.login, record.server, record.backend) != (
                slot.record.login,
                slot.record.server,
                slot.record.backend,
            ):
                self._retire(account, revoke=record is None)  # a removed account's identity dies too
            else:
                slot.record = record
        for account, record in wanted.items():  # quarantine: the database's word, then what it sees now
            if (
                self.quarantine.known(account, record.agent_state, record.agent_reason, read_at)
                and account in self.slots
            ):
                self.slots[account].state = "starting"  # a person resumed a held account
        await self._judge()
        now = time.monotonic()
        due = []
        for account, record in wanted.items():
            slot = self.slots.setdefault(account, AgentSlot(record))
            if slot.process is None and slot.state in ("starting", "backoff") and now >= slot.next_start:
                due.append(slot)
        # At most start_concurrency agents starting at once; an agent that finishes starting wakes the loop
        # (Quarantine.alarm), so the next one starts then, not a poll later. What paces logins is the
        # connector's per-server login rate limiter (a file lock shared by every agent), not this loop.
        due = due[: max(0, self.options.start_concurrency - self._starting(now))]
        results = await asyncio.gather(*(self._start(slot) for slot in due), return_exceptions=True)
        for slot, result in zip(due, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("agent start failed; next round", account=slot.record.account, error=repr(result))
        self._write_status()

    def _starting(self, now: float) -> int:
        """Agents spawned that have not said they run yet, within their start permit."""
        return sum(
            1
            for account, slot in self.slots.items()
            if slot.process is not None
            and now - slot.started_at < self.options.start_permit_s
            and not self.quarantine.settled(account)
        )

    async def _start(self, slot: AgentSlot) -> None:
        account = slot.record.account
        bus = await self._bus_identity(account)
        if bus is None:
            return  # the bus is away: the agent could not connect anyway; next round
        record = self.quarantine.overlay(slot.record)  # a quarantine newer than the last read still holds
        stdin = await asyncio.to_thread(agent_handoff, self.settings, record, bus)
        if stdin is None:
            return  # credentials not readable yet (or the account just changed): next round
        await self._hub.seed(slot.record)
        launch = AgentLaunch(
            account=account,
            argv=(sys.executable, "-m", "mtrobot.agent", "--account", account),  # the lean entry
            env=self._agent_env(),
            stdin=stdin,
            agent_dir=self.settings.data_dir / "connector" / account,
            limits=self.options.limits,
            log_path=self.settings.data_dir / "logs" / f"agent-{account}.log",
        )
        try:
            slot.process = await self.runtime.start(launch)
        except Exception as exc:
            log.error("agent could not be started", account=account, error=repr(exc))
            self._crashed(slot, None)
            return
        slot.state, slot.started_at = "running", time.monotonic()
        if slot.down_since is not None:
            down_s, slot.down_since = slot.started_at - slot.down_since, None
            await asyncio.to_thread(activity.write_line, self.settings, account, activity.back_line(down_s))
        self.quarantine.started(account, slot.process)
        slot.watcher = asyncio.create_task(self._watch(slot, slot.process), name=f"watch-agent-{account}")
        log.info("agent started", account=account, pid=slot.process.pid, runtime=self.runtime.name,
                 restarts=slot.restarts)  # fmt: skip

    async def _bus_identity(self, account: str) -> dict[str, str | None] | None:
        """The agent's bus identity (and its ORDERS consumer), from :class:`BusAuthority`."""
        try:
            nc = await self._hub.client()
            async with self._claims:
                grant = await BusAuthority(self.settings, self.nats_url or "", nc).prepare_agent(account)
        except Exception as exc:
            log.warning("no bus identity for the agent yet", account=account, error=repr(exc))
            return None
        return grant.to_handoff()

    def _agent_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV}
        env["MTROBOT_DATA_DIR"] = str(self.settings.data_dir)
        # The intake's order-rate limit is the supervisor's to set (its settings), like the data dir.
        env["MTROBOT_ORDERS_PER_MIN"] = f"{self.settings.orders_per_min:g}"
        env["MTROBOT_ORDER_BURST"] = str(self.settings.order_burst)
        # The host-wide login rate is the supervisor's: every agent takes from the same buckets at one rate.
        env["MTROBOT_LOGIN_RATE_PER_S"] = repr(self.settings.login_rate_per_s)
        env["MTROBOT_LOGIN_BURST"] = repr(self.settings.login_burst)
        if self.nats_url:
            env["MTROBOT_NATS_URL"] = self.nats_url
        return env

    async def _watch(self, slot: AgentSlot, process: AgentProcess) -> None:
        code = await process.wait()
        if slot.process is not process:
            return
        slot.process, slot.last_exit = None, code
        if slot.state == "stopping":
            return
        account = slot.record.account
        if code == 0:
            slot.state = "held"
            log.info("agent stopped on request; not restarted", account=account)
        else:
            breach = getattr(process, "limit_breach", lambda: None)()
            reason, hold = self.quarantine.exited(account, code, breach)
            if reason is not None:
                await self.quarantine.impose(account, reason)
            if hold:
                slot.state = "held"
                log.error("quarantined agent not restarted until a person resumes it", account=account,
                          reason=self.quarantine.reasons.get(account))  # fmt: skip
            else:
                self._crashed(slot, code)
            slot.down_since = time.monotonic()
            restart_in = None if hold else max(0.0, slot.next_start - slot.down_since)
            line = activity.stopped_line(code, restart_in)
            await asyncio.to_thread(activity.write_line, self.settings, account, line)
        self._write_status()
        self._wake.set()

    async def _judge(self) -> None:
        """Quarantine what misbehaves now (:mod:`.quarantine`); an agent that stopped answering is killed."""
        running = {a: s.process for a, s in self.slots.items() if s.process is not None}
        for verdict in self.quarantine.check(running):
            process = running[verdict.account]
            told = None if verdict.kill else process  # one that stopped answering is not asked
            await self.quarantine.impose(verdict.account, verdict.reason, told, kill=verdict.kill)
            if verdict.kill:
                process.kill()

    def _crashed(self, slot: AgentSlot, code: int | None) -> None:
        if slot.started_at and time.monotonic() - slot.started_at >= self.options.stable_s:
            slot.failures = 0  # it ran a stable minute: this is a new problem, start the schedule over
        slot.failures += 1
        slot.restarts += 1
        delay = self.options.backoff.delay(slot.failures)
        slot.state, slot.next_start = "backoff", time.monotonic() + delay
        log.error("agent exited; restarting", account=slot.record.account, code=code, in_s=round(delay, 2),
                  failures=slot.failures)  # fmt: skip

    def _retire(self, account: str, *, revoke: bool = False) -> None:
        slot = self.slots.pop(account)
        slot.state = "stopping"
        if slot.process is not None or revoke:
            if slot.process is not None:
                log.info("agent no longer wanted; stopping it", account=account, pid=slot.process.pid)
            task = asyncio.create_task(
                self._stop_and_revoke(account, slot.process, revoke), name=f"stop-agent-{account}"
            )
            self._stops.add(task)
            task.add_done_callback(self._stops.discard)

    async def _stop_and_revoke(self, account: str, process: AgentProcess | None, revoke: bool) -> None:
        """Stop the agent (it flushes its outbox on the way out), then, for a removed account, revoke its
        bus identity: the server disconnects anything still using it, and it can never connect again."""
        if process is not None:
            await self._stop_process(process)
        if revoke:
            try:
                nc = await self._hub.client()
                async with self._claims:
                    await BusAuthority(self.settings, self.nats_url or "", nc).revoke_agent(account)
            except Exception as exc:
                log.warning("bus identity of a removed account not revoked", account=account, error=repr(exc))

    async def _stop_process(self, process: AgentProcess) -> None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), self.options.stop_grace_s)
        except TimeoutError:
            log.warning("agent ignored SIGTERM and was killed", pid=process.pid)
            process.kill()
            await process.wait()

    async def shutdown(self) -> None:
        for account in list(self.slots):
            self._retire(account)
        if self._stops:
            await asyncio.gather(*self._stops, return_exceptions=True)
        sweep = getattr(self.runtime, "sweep", None)  # what outlives its agent (a container) goes too
        if sweep is not None:
            await asyncio.to_thread(sweep)
        await self._hub.close()
        await self.quarantine.close()
        self._write_status()

    # -- status --------------------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        rows = [slot.status(self.runtime.name) for slot in self.slots.values()]
        for row in rows:
            row["quarantine"] = self.quarantine.reasons.get(row["account"], "")
        return rows

    def _write_status(self) -> None:
        text = json.dumps(
            {"runtime": self.runtime.name, "pid": os.getpid(), "agents": self.status()}, indent=1
        )
        if text == self._status_written:
            return
        write_atomically(self.settings.run_dir / AGENTS_FILE, text)
        self._status_written = text


def _safe_url(settings: Settings) -> str:
    url = settings.resolved_database_url
    return url.split("@")[-1] if "@" in url else url


async def run_supervisor(settings: Settings, runtime: AgentRuntime | None = None) -> int:
    """Run until SIGTERM / SIGINT; every agent is stopped on the way out."""
    import signal

    from .runtime import choose_runtime

    settings.ensure_dirs()  # the web migrates the database; until it has, each round waits for it
    supervisor = Supervisor(settings, runtime or choose_runtime(settings))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, supervisor.stop)
    await supervisor.run()
    return 0
