"""The connector of one account, usable in-process by an agent (``await start()`` / ``await stop()``).

Wiring: journal + audit trail + broker session + executor + reconciler + intake from the durable JetStream
consumer ``connector_{account}`` on ``orders.submitted.{account}.>``. A message is acknowledged only after
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
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
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
from .intake import CrashReorder, Parsed, answer, dead_letter, read_order
from .journal import Journal, JournalEntry
from .link import BrokerLink
from .metrics import ConnectorMetrics
from .options import ConnectorOptions, OptionsHolder
from .outbox import Outbox
from .ratelimit import LoginRateLimiter
from .reconcile import Reconciler
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


def durable_name(account: str) -> str:
    return f"connector_{account}"


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
        self._stopping = False
        self._dead_letters = 0
        self._dead_letter_logged = -1.0
        self._own_nc = False
        self._hub: Any = None
        self.metrics = ConnectorMetrics(account)
        self.intake_running = False
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
        limiter = LoginRateLimiter(self.settings.run_dir, opts.server or "default", opts.login_rate)
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
        self.session.on_connected(self._after_connect)
        self.session.start()
        self._spawn(self.outbox.run(), "outbox")
        self._spawn(self._intake_loop(), "intake")
        self._spawn(self._watch_loop(), "watch")
        self._spawn(self._sync_loop(), "sync")
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
        self._stopping = self.outbox.stopping = True  # loops end by themselves too: a lost cancellation
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

    # -- intake ------------------------------------------------------------------------------------

    async def _recover(self) -> None:
        """Startup is recovery: finish every order the journal has not seen to a terminal state."""
        assert self.journal is not None
        for entry in self.journal.open_entries():
            async with self._order_lock:
                current = self.journal.get(entry.order_id)
                if current is not None:
                    log.info("recovering order", order_id=current.order_id, state=current.state.value)
                    await self.executor.execute(current)
        self.outbox.wake.set()

    async def _subscribe(self) -> Any:
        assert self.js is not None
        opts = self.options.current
        config = ConsumerConfig(
            durable_name=durable_name(self.account),
            filter_subject=subjects.orders_submitted_filter(self.account),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=opts.ack_wait_s,
            max_deliver=-1,
            max_ack_pending=256,
        )
        return await self.js.pull_subscribe(
            subjects.orders_submitted_filter(self.account),
            durable=durable_name(self.account),
            stream=subjects.ORDERS_STREAM,
            config=config,
        )

    async def _crash_reorder(self) -> CrashReorder:
        """What a killed predecessor left fetched but unacknowledged (see :class:`CrashReorder`)."""
        assert self.js is not None
        opts = self.options.current
        info = await self.js.consumer_info(subjects.ORDERS_STREAM, durable_name(self.account))
        pending, upto = int(info.num_ack_pending or 0), int(info.delivered.stream_seq or 0)
        if pending:
            log.warning(
                "messages of a previous run were never acknowledged: newer ones wait for them",
                account=self.account,
                pending=pending,
                upto_seq=upto,
            )
        return CrashReorder(pending, upto, 3 * opts.ack_wait_s, time.monotonic())

    async def _intake_loop(self) -> None:
        await self._recover()
        sub = None
        reorder: CrashReorder | None = None
        while not self._stopping:
            try:
                if sub is None:
                    sub = await self._subscribe()
                    reorder = reorder or await self._crash_reorder()
                    self.intake_running = True
                msgs = await sub.fetch(self.options.current.fetch_batch, timeout=1.0)
            except TimeoutError:
                msgs = []
                if reorder is None or not reorder.active:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS restarting: keep trying, the durable consumer keeps our place
                log.warning("intake waiting for NATS", account=self.account, error=str(exc))
                self.intake_running = sub is not None and self.nc is not None and self.nc.is_connected
                await asyncio.sleep(0.5)
                continue
            if reorder is not None and reorder.active:
                msgs = reorder.admit(msgs, time.monotonic())
                for held in reorder.holding():  # held, not forgotten: no redelivery behind our back
                    with contextlib.suppress(Exception):
                        await held.in_progress()
            for msg in msgs:
                try:
                    await self._handle(msg)
                except asyncio.CancelledError:
                    raise
                except Exception:  # not acknowledged: JetStream redelivers it, the journal resumes it
                    log.exception("order message not finished, left for redelivery", account=self.account)

    async def _handle(self, msg: Any) -> None:
        token = msg.subject.split(".", 3)[3] if msg.subject.count(".") >= 3 else "_"
        symbol = subjects.symbol_from_token(token)
        meta = msg.metadata
        seq = meta.sequence.stream if meta else None
        published = meta.timestamp.timestamp() if meta and meta.timestamp else None
        parsed = read_order(msg.data, self.account, symbol)
        if parsed.unreadable:
            await self._dead_letter(msg, parsed, seq, meta.num_delivered if meta else None)
            return
        heartbeat = asyncio.create_task(self._keep_in_progress(msg), name="intake-in-progress")
        try:
            async with self._order_lock:
                await self.executor.handle_parsed(parsed, seq, published)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        with contextlib.suppress(Exception):  # the outcome is in the journal: its events go out now
            await self.outbox.publish_new()
        self._failpoints.hit("after_publish")
        try:
            await msg.ack()
        except Exception as exc:  # NATS away: the redelivered copy will find the order finished
            log.warning("ack failed; the message will be redelivered", account=self.account, error=str(exc))
        self.outbox.wake.set()  # the outbox loop confirms and cleans up, off the order path

    async def _dead_letter(self, msg: Any, parsed: Parsed, seq: int | None, deliveries: int | None) -> None:
        """Keep an unreadable message aside, answer the sender, acknowledge: it never blocks the intake.
        If the dead-letter stream cannot take it, the message is left for redelivery (nothing is lost)."""
        assert self.js is not None
        record = dead_letter(self.account, msg.subject, msg.data, parsed, seq, deliveries)
        headers = {"Nats-Msg-Id": f"{self.account}:{seq}"} if seq is not None else None
        await self.js.publish(
            subjects.dead_letter_orders(self.account),
            record.model_dump_json().encode(),
            timeout=5,
            headers=headers,
        )
        # The answer goes out before the ack (at least once): a crash in between dead-letters the redelivered
        # copy again under the same Nats-Msg-Id, so the stream keeps one record.
        assert self.nc is not None
        await self.nc.publish(
            subjects.broker_error(self.account, parsed.symbol), answer(self.account, parsed)
        )
        self.metrics.outcome("dead_letter")
        self._dead_letters += 1
        now = time.monotonic()
        if now - self._dead_letter_logged >= 1.0:  # a flood must not become a flood of log lines
            self._dead_letter_logged = now
            log.warning(
                "unreadable order message kept in the dead letter",
                account=self.account,
                stream_seq=seq,
                order_id=parsed.reply_order_id,
                reason=parsed.refusal.message if parsed.refusal else "",
                dead_letters_so_far=self._dead_letters,
            )
        try:
            await msg.ack()
        except Exception as exc:  # NATS away: the redelivered copy is dead-lettered again (deduplicated)
            log.warning("ack failed; the message will be redelivered", account=self.account, error=str(exc))
        self.outbox.wake.set()

    async def _keep_in_progress(self, msg: Any) -> None:
        interval = max(0.5, self.options.current.ack_wait_s / 3)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    # -- reconciliation ----------------------------------------------------------------------------

    async def _after_connect(self) -> None:
        self._spawn(self._reconcile("reconnect" if self.session.connects > 1 else "startup"), "reconcile-now")

    async def _reconcile(self, trigger: str) -> None:
        try:
            await self.reconciler.reconcile(trigger)
        except Exception as exc:  # the next interval or reconnect tries again
            log.warning("reconciliation failed", account=self.account, trigger=trigger, error=str(exc))
        finally:
            self.outbox.wake.set()

    async def _watch_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.options.current.pending_poll_s)
            if self.session.ready:
                try:
                    await self.reconciler.watch_open_orders()
                except Exception as exc:
                    log.warning("order watch failed", account=self.account, error=str(exc))
                self.outbox.wake.set()

    async def _sync_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.options.current.sync_interval_s)
            if self.session.ready:
                await self._reconcile("interval")

    def _count(self, entry: JournalEntry) -> None:
        self.metrics.outcome(entry.state.value)
        self.outbox.wake.set()
