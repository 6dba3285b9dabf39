"""``mtrobot agent --account ID``: everything one MT5 account needs, in one asyncio process.

- the account's terminal session and order path: the existing :class:`~mtrobot.connector.service.Connector`,
  used as a component (journal, intake from its durable consumer, reconciliation), with the trading gate
  (:mod:`.gate`) in front of new opens;
- the robot host (:class:`~mtrobot.robots.service.RobotService`): the account's portfolio, hot-loaded;
- the aggregator (:mod:`.aggregator`): ``snapshot.{account}`` and KV ``account_snapshots``;
- control on ``agent.control.{account}`` (:mod:`.control`) and a heartbeat on ``agent.heartbeat.{account}``.

It holds nothing heavy (no database, no Kafka or ClickHouse client, no web framework): executions and the
Kafka mirror are written by the host's recorder from the bus. Its credentials come from the supervisor's
hand-off on stdin (:mod:`.handoff`); its bus identity is the hand-off's ``bus`` part.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import SecretStr, ValidationError

from mtrobot.agent.aggregator import Aggregator
from mtrobot.agent.entry import EXIT_STOPPED
from mtrobot.agent.gate import TradingGate
from mtrobot.agent.handoff import AgentHandoff
from mtrobot.agent.heartbeat import CpuMeter, OrderRate, rss_mb
from mtrobot.agent.snapshot_io import NatsSnapshotSink, SessionReader
from mtrobot.bus import subjects
from mtrobot.bus.codec import decode, encode
from mtrobot.bus.connect import connect
from mtrobot.connector.credentials import EXIT_REHANDOFF, Credentials
from mtrobot.connector.intake_limit import OrderLimit
from mtrobot.connector.options import ConnectorOptions
from mtrobot.connector.runner import terminal_factory
from mtrobot.connector.service import Connector, ConnectorParts
from mtrobot.core.agent import (
    AGENT_STOP_S,
    HEARTBEAT_INTERVAL_S,
    AgentState,
    ControlReply,
    ControlRequest,
    Heartbeat,
)
from mtrobot.core.errors import FatalError
from mtrobot.core.events import ConnectionState, Fill, OrderUpdate
from mtrobot.hub.schemas import PortfolioConfig
from mtrobot.logging import get_logger
from mtrobot.proc import AGENT_LIFELINE_ENV
from mtrobot.robots.catalogue import Catalogue, robots_folder
from mtrobot.robots.service import RobotService
from mtrobot.settings import Settings

log = get_logger(__name__)

ROBOTS_REFRESH_S = 1.0


class GatedReader(SessionReader):
    """The session as the aggregator reads it, except that a quarantined agent says so."""

    def __init__(self, connector: Connector, gate: TradingGate) -> None:
        super().__init__(connector.session)
        self._gate = gate

    def connection(self) -> ConnectionState:
        if self._gate.state is AgentState.QUARANTINED:
            return ConnectionState.QUARANTINED
        return super().connection()


class MarketCalls:
    """The robots' view of the session's link: market-data reads, not audited (see ``BrokerLink.call``)."""

    def __init__(self, link: Any) -> None:
        self._link = link

    async def call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        return await self._link.call(operation, *args, audited=False, **kwargs)


class Agent:
    def __init__(self, account: str, settings: Settings, handoff: AgentHandoff) -> None:
        self.account = account
        self.settings = settings
        self.handoff = handoff
        self.dir = settings.data_dir / "connector" / account
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.gate = TradingGate(self.dir / "gate.json")
        if handoff.control_state == "quarantined":
            self.gate.quarantine(handoff.control_reason or "by the operator")
        elif handoff.control_state == "paused":
            self.gate.resume()  # a pause replaces whatever the gate held (the database decides)
            self.gate.pause(handoff.control_reason or "paused by the trader")
        elif handoff.control_state == "running":
            self.gate.resume()
        self.starting = True
        self.stopping = asyncio.Event()
        self.exit_code = EXIT_STOPPED
        self.order_rate = OrderRate()
        self._cpu = CpuMeter()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriptions: list[Any] = []
        self.nc: Client | None = None
        self.connector: Connector | None = None
        self.robots: RobotService | None = None
        self.aggregator: Aggregator | None = None

    @property
    def state(self) -> AgentState:
        if self.stopping.is_set():
            return AgentState.STOPPING
        if self.gate.state is not AgentState.RUNNING:
            return self.gate.state
        return AgentState.STARTING if self.starting else AgentState.RUNNING

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        url = self.settings.discover_nats_url()
        if not url:
            raise FatalError("no NATS URL: the supervisor sets MTROBOT_NATS_URL")
        self.nc = await connect(url, f"agent-{self.account}", **self.handoff.connect_options())
        await self._serve_control()
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="agent-heartbeat"))
        # Listening before the connector starts: it works off the backlog left by a crash at once, and
        # those orders count in the heartbeat's order rate (the aggregator, made once the session exists,
        # reads positions and balance from the broker itself).
        self._subscriptions += [
            await self.nc.subscribe(subjects.broker_fill_of(self.account), cb=self._on_fill),
            await self.nc.subscribe(subjects.broker_order_of(self.account), cb=self._on_update),
        ]
        self.connector = self._connector()
        await self.connector.start()
        # A (re)connect is told at once, not up to a heartbeat period later: the supervisor, the web and the
        # density bench see "connected" as soon as it holds. Registered before the session's first await.
        self.connector.session.on_connected(self._publish_heartbeat)
        self.aggregator = Aggregator(
            self.account, GatedReader(self.connector, self.gate), NatsSnapshotSink(self.nc, self.account)
        )
        await self.aggregator.start()
        self.robots = RobotService(
            self.account, self.nc, self._link, Catalogue.load(robots_folder(self.settings.data_dir))
        )
        await self.robots.start()
        await self._apply_handoff_portfolio()
        if self.gate.state is not AgentState.RUNNING:
            await self.robots.host.pause(self.gate() or "paused")
        self._tasks.append(asyncio.create_task(self._robots_loop(), name="agent-robots"))
        self.starting = False
        log.info("agent running", account=self.account, pid=os.getpid(), gate=self.gate.state.value)
        # "Running" told at once, not up to a heartbeat period later: the supervisor starts the next agent
        # then (its start permits), and judges an agent's CPU only from its first running heartbeat on.
        with contextlib.suppress(Exception):
            await self._publish_heartbeat()

    def _connector(self) -> Connector:
        creds = self.handoff.credentials
        options = ConnectorOptions(
            backend=self.handoff.backend, login=creds.login, server=creds.server,
            order_limit=OrderLimit.of(self.settings),
        )  # fmt: skip

        async def refresh() -> Credentials:
            # Refused: the stored password may have been replaced; only the supervisor can read it again.
            log.warning(
                "broker refused the handed-off password; asking for a fresh hand-off", account=self.account
            )
            self.exit_code = EXIT_REHANDOFF
            self.stopping.set()
            return creds

        parts = ConnectorParts(
            terminal_factory=terminal_factory(self.handoff.backend, self.settings, options),
            nc=self.nc,
            inbox_prefix=self.handoff.inbox_prefix,  # its own bus account: no stream to check
        )
        connector = Connector(
            self.account, self.settings, SecretStr(creds.password.get_secret_value()), options, parts,
            refresh=refresh, gate=self.gate,
        )  # fmt: skip
        parts.terminal_factory = terminal_factory(
            self.handoff.backend, self.settings, lambda: connector.options.current
        )
        return connector

    def _link(self) -> Any:
        connector = self.connector
        if connector is None or not hasattr(connector, "session") or not connector.session.ready:
            return None
        return MarketCalls(connector.session.link)

    async def _apply_handoff_portfolio(self) -> None:
        """The hub is the live source; the supervisor's copy from the database covers a hub without one."""
        assert self.robots is not None
        if self.handoff.portfolio and not self.robots.host.portfolio.robots:
            try:
                config = PortfolioConfig.model_validate(self.handoff.portfolio)
            except ValidationError as exc:
                log.warning("the hand-off's portfolio is not valid", account=self.account, error=str(exc))
                return
            await self.robots.host.set_portfolio(config)

    async def stop(self) -> None:
        self.stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        # The parts and the drain share one budget, inside the supervisor's grace (supervisor/stopping.py).
        deadline = time.monotonic() + AGENT_STOP_S
        for part in (self.robots, self.aggregator, self.connector):
            if part is not None:
                try:
                    await asyncio.wait_for(part.stop(), max(0.5, deadline - time.monotonic() - 1.0))
                except Exception as exc:  # stop the rest anyway
                    log.error("agent part did not stop cleanly", part=type(part).__name__, error=repr(exc))
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self._publish_heartbeat()
                await asyncio.wait_for(self.nc.drain(), max(0.5, deadline - time.monotonic()))

    # -- bus inputs --------------------------------------------------------------------------------

    async def _on_fill(self, msg: Msg) -> None:
        with contextlib.suppress(ValidationError):
            fill = decode(Fill, msg.data)
            if self.aggregator is not None:
                self.aggregator.on_fill(fill)

    async def _on_update(self, msg: Msg) -> None:
        with contextlib.suppress(ValidationError):
            update = decode(OrderUpdate, msg.data)
            self.order_rate.add(update.order_id)
            if self.aggregator is not None:
                self.aggregator.on_order_update(update)

    async def _robots_loop(self) -> None:
        while True:
            if self.robots is not None and self.aggregator is not None:
                self.aggregator.on_robots(self.robots.host.robots())
            await asyncio.sleep(ROBOTS_REFRESH_S)

    # -- control -----------------------------------------------------------------------------------

    async def _serve_control(self) -> None:
        assert self.nc is not None
        self._subscriptions.append(
            await self.nc.subscribe(subjects.agent_control(self.account), cb=self._on_control)
        )

    async def _on_control(self, msg: Msg) -> None:
        try:
            request = ControlRequest.model_validate_json(msg.data)
        except ValidationError:
            usage = 'a control request is {"cmd": "pause" | "resume" | "flatten" | "reload" | "stop"}'
            reply = ControlReply(ok=False, state=self.state.value, message=usage)
        else:
            reply = await self.control(request)
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(reply.model_dump_json().encode())
        if request_is_stop(msg.data) and reply.ok:
            self.stopping.set()

    async def control(self, request: ControlRequest) -> ControlReply:
        """Carry out one control command; never raises (the reply says what happened)."""
        from mtrobot.agent.control import carry_out

        try:
            ok, message = await carry_out(self, request)
        except Exception as exc:
            log.exception("control command failed", account=self.account, cmd=request.cmd)
            ok, message = False, f"{request.cmd} failed: {exc}"
        await self._publish_heartbeat()
        return ControlReply(ok=ok, state=self.state.value, message=message)

    # -- heartbeat ---------------------------------------------------------------------------------

    def heartbeat(self) -> Heartbeat:
        connection, reason = ConnectionState.CONNECTING.value, self.gate.reason
        if self.connector is not None and hasattr(self.connector, "session"):
            connection = self.connector.session.state.value
            reason = reason or self.connector.session.breaker.describe()
        return Heartbeat(
            account=self.account,
            state=self.state,
            pid=os.getpid(),
            rss_mb=rss_mb(),
            cpu_pct=self._cpu.percent(),
            orders_per_min=self.order_rate.per_minute(),
            connection=connection,
            reason=reason,
        )

    async def _publish_heartbeat(self) -> None:
        if self.nc is not None and self.nc.is_connected:
            await self.nc.publish(subjects.agent_heartbeat(self.account), encode(self.heartbeat()))

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self._publish_heartbeat()
            except Exception as exc:  # the bus is away; the next beat tries again
                log.info("heartbeat not published", account=self.account, error=repr(exc))
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)


def request_is_stop(data: bytes) -> bool:
    try:
        return ControlRequest.model_validate_json(data).cmd == "stop"
    except ValidationError:
        return False


def watch_lifeline(loop: asyncio.AbstractEventLoop, stopping: asyncio.Event, fd: int = 0) -> None:
    """Stop when ``fd`` (stdin, after the hand-off line) reaches its end: the supervisor has gone, and no
    one would stop this agent any more (see :data:`mtrobot.proc.AGENT_LIFELINE_ENV`)."""

    def readable() -> None:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            loop.remove_reader(fd)
            log.warning("the supervisor has gone (the agent's stdin closed): stopping")
            stopping.set()

    loop.add_reader(fd, readable)


async def run_agent(account: str, settings: Settings, handoff: AgentHandoff) -> int:
    """Run the agent until SIGTERM, a ``stop`` command, or a refused password (exit for a fresh hand-off)."""
    settings.ensure_dirs()
    agent = Agent(account, settings, handoff)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # replaces the entry's stop_on_sigterm: a stop is now clean
        loop.add_signal_handler(sig, agent.stopping.set)
    if os.environ.get(AGENT_LIFELINE_ENV) == "stdin":
        watch_lifeline(loop, agent.stopping)
    try:
        await agent.start()
        await agent.stopping.wait()
    finally:
        await agent.stop()
    log.info("agent stopped", account=account, exit_code=agent.exit_code)
    return agent.exit_code
