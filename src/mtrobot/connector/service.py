"""The connector of one account, usable in-process by an agent (``await start()`` / ``await stop()``).

Wiring: journal + audit trail + broker session + executor + reconciler, and the loops that run on them
(:mod:`.running`: recovery, the intake from the durable JetStream consumer ``connector_{account}`` on
``orders.submitted.{account}.>``, the order watch, the reconciliation). A message is acknowledged only after
its outcome is in the journal; the journal's outbox (:mod:`.outbox`) then publishes the events, so a crash
anywhere loses nothing and duplicates nothing at the broker. Fills are captured by the stream ``FILLS``
(``Nats-Msg-Id`` ``fill-{account}-{deal}``) and leave the outbox once the server confirmed it has them; the
recorder (``mtrobot recorder``) writes them into ``executions``. The connector holds no database engine
and no Kafka client.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import SecretStr

from mtrobot.bus import subjects
from mtrobot.bus.connect import connect, provision
from mtrobot.core.errors import FatalError
from mtrobot.logging import get_logger
from mtrobot.proc import ProcessLock
from mtrobot.settings import Settings

from .audit import AuditTrail, BatchSender, publish_batch
from .executor import OrderExecutor
from .failpoints import Failpoints
from .journal import Journal, JournalEntry
from .link import BrokerLink
from .metrics import ConnectorMetrics
from .options import ConnectorOptions, OptionsHolder
from .outbox import Outbox
from .ratelimit import LoginRate, LoginRateLimiter
from .reconcile import Reconciler
from .running import ConnectorLoops, Wired
from .running import durable_name as durable_name  # where the tests and tools have always found it
from .session import CredentialsRefresh, Session, TerminalFactory

log = get_logger(__name__)


async def cancel_all(tasks: list[asyncio.Task[None]], timeout: float = 10.0) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again any that swallowed a cancellation."""
    deadline = asyncio.get_running_loop().time() + timeout
    pending = {t for t in tasks if not t.done()}
    while pending and asyncio.get_running_loop().time() < deadline:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=0.5)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a crashed task was already logged by its supervisor
    if pending:
        log.error("connector tasks did not stop", tasks=[t.get_name() for t in pending])


@dataclass
class ConnectorParts:
    """What the connector talks to; tests and the agent pass their own, the CLI builds the defaults."""

    terminal_factory: TerminalFactory
    nc: Client | None = None
    bus_creds: str | None = None
    """The agent's bus identity (``.creds`` content or path) and private inbox prefix; with an inbox prefix
    the agent is in its own NATS account, where the platform provisions the streams and its consumer."""
    inbox_prefix: str | None = None


class Connector:
    """The MT5 connector for one account. See the module docstring."""

    def __init__(
        self,
        account: str,
        settings: Settings,
        password: SecretStr,
        options: ConnectorOptions,
        parts: ConnectorParts,
        *,
        nats_url: str | None = None,
        use_hub: bool = True,
        failpoints: Failpoints | None = None,
        rng: random.Random | None = None,
        refresh: CredentialsRefresh | None = None,
        gate: Callable[[], str | None] | None = None,
    ) -> None:
        self.account = account
        self._gate = gate
        """The agent's trading gate: asked before an ``open`` executes (``None`` = trade, else the reason)."""
        self._refresh = refresh
        self.settings = settings
        self.nats_url = nats_url or settings.discover_nats_url()
        self.options = OptionsHolder(options)
        self.parts = parts
        self.use_hub = use_hub
        self.dir = settings.data_dir / "connector" / account
        self._password = password
        self._failpoints = failpoints or Failpoints()
        self._rng = rng or random.Random()
        # One connector per account per data dir: a second one would break at-most-once.
        self._lock = ProcessLock(self.dir / "lock", "another connector already runs for this account")
        self._order_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.outbox = Outbox(account, self._failpoints)
        self._own_nc = False
        self._hub: Any = None
        self.metrics = ConnectorMetrics(account)
        self.loops: ConnectorLoops | None = None
        """What runs (built by :meth:`start` once the parts are wired)."""
        self.journal: Journal | None = None
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._lock.acquire()
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self.journal = Journal(self.dir / "journal.sqlite3", self.account)
        if self.parts.nc is not None:
            self.nc = self.parts.nc
        else:
            if not self.nats_url:
                raise FatalError("no NATS URL: set MTROBOT_NATS_URL or start `mtrobot up` first")
            self.nc = await connect(
                self.nats_url,
                f"connector-{self.account}",
                on_state=self._on_nats_state,
                creds=self.parts.bus_creds,
                inbox_prefix=self.parts.inbox_prefix,
            )
            self._own_nc = True
        self.js = self.nc.jetstream(timeout=5)
        self.outbox.attach(self.journal, self.nc)
        await self._ensure_streams()
        if self.use_hub:
            await self._start_hub()
        self.audit = AuditTrail(self.account, self.dir / "audit-spool", {}, self._audit_sinks())
        self.audit.start()
        opts = self.options.current
        self.link = BrokerLink(None, self.audit, opts.call_timeout_s)
        rate = LoginRate(self.settings.login_rate_per_s, self.settings.login_burst)
        limiter = LoginRateLimiter(self.settings.run_dir, opts.server or "default", rate)
        self.session = Session(
            self.account,
            self.link,
            self.options,
            self.parts.terminal_factory,
            self._password,
            limiter,
            rng=self._rng,
            refresh=self._refresh,
        )
        self.executor = OrderExecutor(
            self.account,
            self.journal,
            self.session,
            self.options,
            failpoints=self._failpoints,
            rng=self._rng,
            on_outcome=self._count,
            gate=self._gate,
        )
        self.reconciler = Reconciler(self.account, self.journal, self.executor, self._order_lock)
        self.loops = ConnectorLoops(
            Wired(
                self.account,
                self.options,
                self.journal,
                self.nc,
                self.js,
                self.session,
                self.executor,
                self.reconciler,
                self.outbox,
                self.metrics,
                self._failpoints,
                self._order_lock,
            )
        )
        self.session.on_connected(self._after_connect)
        self.session.start()
        self._spawn(self.outbox.run(), "outbox")
        self._spawn(self.loops.intake(), "intake")
        self._spawn(self.loops.watch(), "watch")
        self._spawn(self.loops.sync(), "sync")
        log.info("connector started", account=self.account, journal=str(self.journal.path))

    async def _ensure_streams(self) -> None:
        """Provision only a bus that lacks our streams: an operator's cluster keeps its own settings."""
        assert self.js is not None
        if self.parts.inbox_prefix is not None:  # an agent's own bus account sees no stream
            return
        try:
            streams = (subjects.ORDERS_STREAM, subjects.AUDIT_STREAM, subjects.DEAD_LETTER_STREAM)
            for stream in (*streams, subjects.FILLS_STREAM):
                await self.js.stream_info(stream)
        except NotFoundError:
            await provision(self.js)

    async def stop(self) -> None:
        self.outbox.stopping = True  # loops end by themselves too: a lost cancellation
        if self.loops is not None:
            self.loops.stopping = True
        await cancel_all(self._tasks)
        self._tasks.clear()
        if hasattr(self, "session"):
            await self.session.stop()
        if self.journal is not None and self.nc is not None and self.nc.is_connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.flush_outbox(), 5)
        if hasattr(self, "audit"):
            await self.audit.stop()
        if self._hub is not None:
            with contextlib.suppress(Exception):
                await self._hub.close()
        if self._own_nc and self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.close(), 5)
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        self._lock.release()

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(self._supervised(coro, name), name=f"connector-{name}"))

    async def _supervised(self, coro: Any, name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("connector task crashed", task=name, account=self.account)
            raise

    @property
    def intake_running(self) -> bool:
        return self.loops is not None and self.loops.intake_running

    @property
    def ready(self) -> bool:
        return self.intake_running and self.session.ready

    # -- hub ---------------------------------------------------------------------------------------

    async def _start_hub(self) -> None:
        from mtrobot.hub.client import ConfigClient
        from mtrobot.hub.schemas import ConnectorConfig

        from .options import options_from_hub

        self._hub = ConfigClient(
            f"connector.{self.account}", safe_defaults=ConnectorConfig(), nats_url=self.nats_url, nc=self.nc
        )
        await self._hub.init_async(timeout=5.0)
        base = self.options.current

        def apply(config: Any) -> None:
            self.options.replace(options_from_hub(config, base))
            log.info("connector configuration reloaded", account=self.account, version=self.options.version)

        if self._hub.source == "hub":
            apply(await self._hub.get_config())
        self._hub.on_change(apply)

    # -- audit sinks -------------------------------------------------------------------------------

    def _audit_sinks(self) -> dict[str, BatchSender]:
        async def to_jetstream(batch: list[tuple[str, bytes, str]]) -> None:
            assert self.js is not None
            await publish_batch(self.js, batch, timeout_s=5)

        return {"jetstream": to_jetstream}

    # -- outbox (connector/outbox.py) ----------------------------------------------------------------

    async def flush_outbox(self) -> int:
        """Publish everything the journal's outbox holds and wait until the bus confirmed it."""
        return await self.outbox.flush()

    async def _on_nats_state(self, state: str) -> None:
        if state == "disconnected":
            self.outbox.disconnected()
        elif state == "reconnected" and self.nc is not None:
            self._spawn(self.outbox.replay_recent(), "replay-recent")

    # -- reconciliation ----------------------------------------------------------------------------

    async def _after_connect(self) -> None:
        assert self.loops is not None
        trigger = "reconnect" if self.session.connects > 1 else "startup"
        self._spawn(self.loops.reconcile(trigger), "reconcile-now")

    def _count(self, entry: JournalEntry) -> None:
        self.metrics.outcome(entry.state.value)
        self.outbox.wake.set()
