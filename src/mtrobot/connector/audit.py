"""The broker audit trail: every broker call as an AuditRecord on ``audit.broker.{account}``.

Recording is a single append to a disk spool (never an await on the network), so a slow or absent NATS or
Kafka can never hold an order back. Two pumps drain the spool: one to the JetStream stream
``BROKER_COMMUNICATION_LOG`` (``Nats-Msg-Id`` makes a replay after a crash harmless), one to the Kafka
mirror when one is configured. Each commits its cursor only after its sink acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mtrobot.bus import codec, subjects
from mtrobot.core.events import AuditRecord
from mtrobot.logging import get_logger, redact

from .backoff import Backoff
from .spool import Spool

log = get_logger(__name__)

MAX_RECORD_BYTES = 256 * 1024
Sender = Callable[[str, bytes, str], Awaitable[None]]
"""``send(key, payload, subject)``: deliver one record to a sink, raising if it was not acknowledged."""


def _plain(value: Any) -> Any:
    """MT5 structures (named-tuple-like) and tuples of them as JSON-able values, secrets removed."""
    if hasattr(value, "dtype") and hasattr(value, "shape"):  # a robot's numpy bars or ticks: the size will do
        return {"rows": int(value.shape[0]) if value.shape else 0}
    value = redact(value)
    try:
        json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)
    return value


class AuditTrail:
    """Append-only audit of broker calls with one pump per sink. ``record`` never blocks or raises."""

    def __init__(self, account: str, spool_dir: Path, sinks: dict[str, Sender]) -> None:
        self.account = account
        self.subject = subjects.audit_broker(account)
        self.spool = Spool(spool_dir, tuple(sinks))
        self._sinks = sinks
        self._wake: dict[str, asyncio.Event] = {name: asyncio.Event() for name in sinks}
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
                request=_plain(request) if request is not None else None,
                response=_plain(response),
                retcode=retcode,
                latency_ms=round(latency_ms, 3),
            )
            payload = codec.encode(record)
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
        for name in self._sinks:
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
        return {name: self.spool.backlog(name) for name in self._sinks}

    async def _pump(self, name: str) -> None:
        send = self._sinks[name]
        backoff = Backoff(0.2, 10.0)
        failures = 0
        while not self._stopping:
            items = await asyncio.to_thread(self.spool.read, name, 256)
            if not items:
                self._wake[name].clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake[name].wait(), 1.0)
                continue
            delivered = None
            try:
                for item in items:
                    await send(f"{self.spool.spool_id}-{item.key}", item.payload, self.subject)
                    delivered = item
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("audit sink unavailable, spooling", sink=name, error=str(exc), failures=failures)
                await asyncio.sleep(backoff.delay(failures))
            finally:
                if delivered is not None:  # one cursor write per batch, up to the last acknowledged record
                    self.spool.commit(name, delivered)
