"""``mtrobot recorder``: what is shared by every account's order path, once per host, read from the bus.

Two durable JetStream pull consumers, each acknowledging a batch only after its sink took it:

- ``recorder_executions`` on stream ``FILLS`` (``broker.fill.>``): fills into ClickHouse ``executions``
  (:mod:`.executions`), one insert per batch, deals already there left out. A crash between the insert and
  the acknowledgement redelivers the batch, which then adds nothing: one row per deal, exactly.
- ``recorder_kafka`` on ``BROKER_COMMUNICATION_LOG``: every AuditRecord to the Kafka topic
  ``broker_communication_log`` when ``MTROBOT_KAFKA_BOOTSTRAP`` is set (at least once, keyed by account).

The streams keep what arrives while the recorder is down; it catches up from its consumers' positions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from mtrobot.bus import subjects
from mtrobot.bus.connect import connect, provision
from mtrobot.bus.identity import service_creds, service_inbox
from mtrobot.connector.failpoints import RECORDER_POINTS, Failpoints
from mtrobot.core.errors import FatalError
from mtrobot.core.events import Fill
from mtrobot.logging import get_logger
from mtrobot.proc import ProcessLock
from mtrobot.settings import Settings

from .executions import Executions
from .kafka import KafkaAuditMirror

log = get_logger(__name__)

EXECUTIONS_DURABLE = "recorder_executions"
KAFKA_DURABLE = "recorder_kafka"
BATCH = 1000
LINGER_S = 1.0
REST_WAIT_S = 0.2
"""After the linger, how long the pull for the rest of a batch waits when nothing more came."""
ACK_WAIT_S = 10.0
"""How soon a batch a crashed recorder took but never acknowledged is delivered again."""
RETRY_S = (0.2, 5.0)

_STREAM_SUBJECTS = {
    subjects.FILLS_STREAM: subjects.FILLS_SUBJECTS[0],
    subjects.AUDIT_STREAM: subjects.AUDIT_SUBJECTS[0],
}
Sink = Callable[[list[Any]], Awaitable[None]]


class Recorder:
    """The recorder part. ``await start()`` / ``await stop()``; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        nats_url: str | None = None,
        executions: Executions | None = None,
        kafka: KafkaAuditMirror | None = None,
        batch: int = BATCH,
        ack_wait_s: float = ACK_WAIT_S,
        failpoints: Failpoints | None = None,
    ) -> None:
        self.settings = settings
        self.nats_url = nats_url or settings.discover_nats_url()
        self._executions = executions
        self._own_executions = executions is None
        self.kafka = kafka
        if kafka is None and settings.kafka_bootstrap:
            self.kafka = KafkaAuditMirror(settings.kafka_bootstrap, client_id="mtrobot-recorder")
        self.batch = batch
        self.ack_wait_s = ack_wait_s
        self._failpoints = failpoints or Failpoints("", RECORDER_POINTS)
        # One recorder per data dir: chDB is one process's, and two writers would race on the same deals.
        self._lock = ProcessLock(
            settings.run_dir / "recorder.lock", "a recorder already runs for this data dir"
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self.recorded = 0
        """Rows written into executions by this process (fills already there are not counted)."""
        self.mirrored = 0
        self.skipped = 0
        """Messages on the fills stream that are not a Fill (logged and acknowledged, never retried)."""

    @property
    def executions(self) -> Executions:
        assert self._executions is not None, "recorder not started"
        return self._executions

    async def start(self) -> None:
        self._lock.acquire()
        try:
            if not self.nats_url:
                raise FatalError("no NATS URL: set MTROBOT_NATS_URL or start `mtrobot up` first")
            if self._executions is None:
                self._executions = await asyncio.to_thread(Executions.open, self.settings)
            self.nc = await connect(
                self.nats_url,
                "recorder",
                creds=service_creds(self.settings, "recorder"),
                inbox_prefix=service_inbox("recorder"),
            )
            self.js = self.nc.jetstream(timeout=5)
            await self._ensure_streams()
            self._spawn(self._consume(subjects.FILLS_STREAM, EXECUTIONS_DURABLE, self._record), "executions")
            if self.kafka is not None:
                self._spawn(self._consume(subjects.AUDIT_STREAM, KAFKA_DURABLE, self._mirror), "kafka")
        except BaseException:
            await self.stop()
            raise
        log.info(
            "recorder started",
            executions="clickhouse" if self.settings.clickhouse_url else "chdb",
            kafka=self.kafka is not None,
        )

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.kafka is not None:
            await self.kafka.stop()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.close(), 5)
            self.nc = None
        if self._own_executions and self._executions is not None:
            self._executions.close()
            self._executions = None
        self._lock.release()

    async def _ensure_streams(self) -> None:
        """Provision only a bus that lacks our streams: an operator's cluster keeps its own settings."""
        assert self.js is not None
        try:
            for stream in (subjects.FILLS_STREAM, subjects.AUDIT_STREAM):
                await self.js.stream_info(stream)
        except NotFoundError:
            await provision(self.js)

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"recorder-{name}"))

    async def _consume(self, stream: str, durable: str, sink: Sink) -> None:
        """Fetch a batch, give it to ``sink`` until it takes it, acknowledge the batch; forever."""
        assert self.js is not None
        sub = None
        failures = 0
        while not self._stopping:
            try:
                if sub is None:
                    sub = await self.js.pull_subscribe(
                        _STREAM_SUBJECTS[stream],
                        durable=durable,
                        stream=stream,
                        config=_consumer(durable, self.ack_wait_s),
                    )
                msgs = await self._fetch_batch(sub)
            except TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS restarting: the durable consumer keeps our place
                log.warning("recorder waiting for NATS", consumer=durable, error=str(exc))
                await asyncio.sleep(0.5)
                continue
            while not self._stopping:
                try:
                    await sink(msgs)
                    failures = 0
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the sink is away: keep the batch unacknowledged and try again
                    failures += 1
                    delay = min(RETRY_S[1], RETRY_S[0] * 2 ** min(failures, 8))
                    log.warning("recorder sink unavailable", consumer=durable, error=str(exc), retry_s=delay)
                    await asyncio.sleep(delay)
            else:
                return
            try:
                # Each one explicitly: with AckPolicy.ALL, a recorder restarted after a crash would, by
                # acknowledging its first new batch, also acknowledge the batch the dead one never wrote.
                for msg in msgs:
                    await msg.ack()
            except Exception as exc:  # redelivered later, and recording it again adds nothing
                log.warning("recorder ack failed", consumer=durable, error=str(exc))

    async def _fetch_batch(self, sub: Any) -> list[Any]:
        """Wait for the first message; unless a backlog is already there, let the rest gather in the stream
        for :data:`LINGER_S` untouched, then take it in one pull: one insert per batch instead of one per
        fill, and no work in the recorder while the fills come (a burst of 50 orders at a bar close is over
        before the recorder looks again; it is not on the order path: waiting costs no order anything)."""
        msgs: list[Any] = await sub.fetch(1, timeout=1.0)  # one waiting request, for one message
        if self.batch == 1:
            return msgs
        meta = msgs[0].metadata
        if meta is None or (meta.num_pending or 0) < self.batch - 1:
            await asyncio.sleep(LINGER_S)
        with contextlib.suppress(TimeoutError):
            msgs += await sub.fetch(self.batch - 1, timeout=REST_WAIT_S)
        return msgs

    async def _record(self, msgs: list[Any]) -> None:
        fills: list[Fill] = []
        for msg in msgs:
            try:
                fills.append(Fill.model_validate_json(msg.data))
            except ValidationError as exc:
                self.skipped += 1
                log.error("not a fill on the fills stream; skipped", subject=msg.subject, error=str(exc))
        if fills:
            self.recorded += await asyncio.to_thread(self.executions.insert_many, fills)
        self._failpoints.hit("recorder_after_insert")

    async def _mirror(self, msgs: list[Any]) -> None:
        assert self.kafka is not None
        if not self.kafka.started:
            await self.kafka.start()
        await self.kafka.send_many([(msg.subject.rsplit(".", 1)[-1], msg.data) for msg in msgs])
        self.mirrored += len(msgs)


def _consumer(durable: str, ack_wait_s: float) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait_s,
        max_deliver=-1,
        max_ack_pending=20_000,
    )


async def run_recorder(settings: Settings, batch: int = BATCH, ack_wait_s: float = ACK_WAIT_S) -> int:
    """``mtrobot recorder`` until SIGINT / SIGTERM."""
    import signal

    settings.ensure_dirs()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    failpoints = Failpoints(None, RECORDER_POINTS)
    recorder = Recorder(settings, batch=batch, ack_wait_s=ack_wait_s, failpoints=failpoints)
    await recorder.start()
    try:
        await stopping.wait()
    finally:
        await recorder.stop()
    return 0
