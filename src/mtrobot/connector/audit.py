"""The broker audit trail: every broker call as an AuditRecord on ``audit.broker.{account}``.

Recording is a single append to a disk spool (never an await on the network), so a slow or absent NATS or
Kafka can never hold an order back. Two pumps drain the spool: one to the JetStream stream
``BROKER_COMMUNICATION_LOG`` (``Nats-Msg-Id`` makes a replay after a crash harmless), one to the Kafka
mirror when one is configured. Each commits its cursor only after its sink acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext
from pydantic_core import PydanticSerializationError

from mtrobot.bus import codec, subjects
from mtrobot.core.events import AuditRecord
from mtrobot.logging import get_logger, redact

from .backoff import Backoff
from .spool import Spool, SpoolItem

log = get_logger(__name__)

MAX_RECORD_BYTES = 256 * 1024
LINGER_S = 0.02
CURSOR_EVERY_S = 0.5
"""A sink's cursor is written at most this often (a rename each time); after a crash the few records since
are sent again, and their keys make the stream drop them (duplicate window 2 minutes)."""
Sender = Callable[[str, bytes, str], Awaitable[None]]
"""``send(key, payload, subject)``: deliver one record to a sink, raising if it was not acknowledged."""
BatchSender = Callable[[list[tuple[str, bytes, str]]], Awaitable[None]]
"""``send([(key, payload, subject), ...])``: deliver a batch in order; raise unless all were acknowledged."""


async def publish_batch(js: JetStreamContext, batch: list[tuple[str, bytes, str]], timeout_s: float) -> None:
    """Publish ``(key, payload, subject)`` records, keyed for de-duplication, and wait for every ack.

    When a publish raises or the wait ends early, the acks already asked for are cancelled: left pending,
    each would hold a slot of the client's publish window and, answered later with an error, log "Future
    exception was never retrieved"."""
    acks: list[asyncio.Future[Any]] = []
    try:
        for key, payload, subject in batch:
            acks.append(await js.publish_async(subject, payload, headers={"Nats-Msg-Id": key}))
        await asyncio.wait_for(asyncio.gather(*acks), timeout_s)
    finally:
        for ack in acks:
            ack.cancel()  # a no-op for the answered ones


def _plain(value: Any) -> Any:
    """MT5 structures (named-tuple-like) and tuples of them as JSON-able values, secrets removed."""
    if hasattr(value, "dtype") and hasattr(value, "shape"):  # a robot's numpy bars or ticks: the size will do
        return {"rows": int(value.shape[0]) if value.shape else 0}
    return redact(value)


def _encode(record: AuditRecord) -> bytes:
    """The record as JSON; a request or response JSON cannot express is kept as its ``repr``."""
    try:
        return codec.encode(record)
    except PydanticSerializationError:
        update = {"request": repr(record.request), "response": repr(record.response)}
        return codec.encode(record.model_copy(update=update))


class AuditTrail:
    """Append-only audit of broker calls with one pump per sink. ``record`` never blocks or raises."""

    def __init__(
        self,
        account: str,
        spool_dir: Path,
        sinks: dict[str, Sender],
        batch_sinks: dict[str, BatchSender] | None = None,
    ) -> None:
        self.account = account
        self.subject = subjects.audit_broker(account)
        self._batch_sinks = batch_sinks or {}
        self._sinks = sinks
        self._names = (*sinks, *self._batch_sinks)
        self.spool = Spool(spool_dir, self._names)
        self._delivered: dict[str, SpoolItem] = {}
        """Per sink, the last record acknowledged but not yet in its cursor file."""
        self._wake: dict[str, asyncio.Event] = {name: asyncio.Event() for name in self._names}
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0
        self.recorded = 0
        self._stopping = False

    def record(
        self,
        operation: str,
        *,
        order_id: str | None = None,
        request: dict[str, Any] | None = None,
        response: Any = None,
        retcode: int | None = None,
        latency_ms: float = 0.0,
    ) -> None:
        try:
            record = AuditRecord(
                account=self.account,
                operation=operation,
                order_id=order_id,
                # MT5 structures become plain values here, secrets removed; encoded once, below.
                request=_plain(request) if request is not None else None,
                response=_plain(response),
                retcode=retcode,
                latency_ms=round(latency_ms, 3),
            )
            payload = _encode(record)
            if len(payload) > MAX_RECORD_BYTES:
                size = len(response) if isinstance(response, list | tuple) else None
                payload = codec.encode(
                    record.model_copy(update={"response": {"truncated": True, "items": size}})
                )
            self.spool.append(payload)
            self.recorded += 1
        except Exception as exc:  # audit must never break the order path; count and log instead
            self.dropped += 1
            log.error("audit record could not be spooled", operation=operation, error=str(exc))
            return
        for event in self._wake.values():
            event.set()

    def start(self) -> None:
        for name in self._names:
            self._tasks.append(asyncio.create_task(self._pump(name), name=f"audit-pump-{name}"))

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Give the pumps a moment to deliver what is spooled; whatever is left is replayed next start."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_timeout
        while loop.time() < deadline and any(self.backlog().values()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        self._stopping = True
        pending = {t for t in self._tasks if not t.done()}
        for _ in range(20):  # a cancellation lost in a wait_for race is simply repeated
            if not pending:
                break
            for task in pending:
                task.cancel()
            _done, pending = await asyncio.wait(pending, timeout=0.5)
        self._tasks.clear()
        self.spool.close()

    def backlog(self) -> dict[str, int]:
        return {name: self.spool.backlog(name) for name in self._names}

    async def _pump(self, name: str) -> None:
        backoff = Backoff(0.2, 10.0)
        failures = 0
        loop = asyncio.get_running_loop()
        committed_at = 0.0
        try:
            while not self._stopping:
                wake = self._wake[name]
                wake.clear()  # before the read: a record spooled from here on sets it again
                after = self._delivered[name].end if name in self._delivered else None
                items = self.spool.read(name, 256, after)  # the page cache, microseconds: no thread hop
                if not items:
                    # Idle: the cursor is written once CURSOR_EVERY_S has passed, not after every batch
                    # (one order at a time goes idle after each order: a rename per order). With nothing
                    # left to write the pump sleeps until the next record: an idle connector or agent
                    # does not wake twice a second for nothing.
                    since = loop.time() - committed_at
                    if since >= CURSOR_EVERY_S:
                        self._commit(name)
                        committed_at = loop.time()
                    timeout = CURSOR_EVERY_S - since if name in self._delivered else None
                    try:
                        await asyncio.wait_for(wake.wait(), timeout)
                    except TimeoutError:
                        continue
                    await asyncio.sleep(LINGER_S)  # let a burst of calls gather into one batch
                    continue
                try:
                    await self._deliver(name, items)
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures += 1
                    log.warning(
                        "audit sink unavailable, spooling", sink=name, error=str(exc), failures=failures
                    )
                    await asyncio.sleep(backoff.delay(failures))
                if loop.time() - committed_at >= CURSOR_EVERY_S:
                    self._commit(name)
                    committed_at = loop.time()
        finally:
            self._commit(name)

    async def _deliver(self, name: str, items: list[SpoolItem]) -> None:
        """Send ``items`` in order; what was acknowledged moves the (in-memory) cursor on."""
        batch = [(f"{self.spool.spool_id}-{item.key}", item.payload, self.subject) for item in items]
        if name in self._batch_sinks:  # one round trip for the batch
            await self._batch_sinks[name](batch)
            self._delivered[name] = items[-1]
            return
        send = self._sinks[name]
        for item, record in zip(items, batch, strict=True):
            await send(*record)
            self._delivered[name] = item

    def _commit(self, name: str) -> None:
        item = self._delivered.pop(name, None)
        if item is not None:
            self.spool.commit(name, item)
