"""The journal's outbox on the bus: what the connector's order path has recorded goes out from here.

Rows are published in order straight after an outcome's commit (:meth:`Outbox.publish_new`, without waiting
for anything), and deleted once the server confirmed it has them (:meth:`Outbox.run` and
:meth:`Outbox.flush`, off the order path). Fills are captured by the stream ``FILLS`` (``Nats-Msg-Id``
``fill-{account}-{deal}``); a failed confirmation sends the cursor back so the rows are published again (at
least once, deduplicated per deal by the stream). After a NATS reconnect the last few seconds' events are
published again: core NATS keeps nothing for a subscriber that was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from typing import Any

from nats.aio.client import Client

from mtrobot.logging import get_logger

from .failpoints import Failpoints
from .journal import Journal

log = get_logger(__name__)

REPLAY_WINDOW_S = 5.0
"""After a NATS reconnect, events published this long before the disconnect go out again."""
REPLAY_DELAY_S = 1.0
_BATCH = 256


class Outbox:
    """Publishes one account's journal outbox on ``nc``. Built before either exists: see :meth:`attach`."""

    def __init__(self, account: str, failpoints: Failpoints) -> None:
        self.account = account
        self._failpoints = failpoints
        self.journal: Journal | None = None
        self.nc: Client | None = None
        self.wake = asyncio.Event()
        """Set when the journal has new rows (or a confirmation is due): the loop runs at once."""
        self.stopping = False
        self._publish_lock = asyncio.Lock()
        self._published_upto = 0
        """Outbox rows up to this id are on the wire (not necessarily confirmed yet)."""
        self._unconfirmed: list[tuple[int, asyncio.Future[Any] | None]] = []
        self._recent: deque[tuple[float, str, bytes]] = deque(maxlen=2048)
        self._disconnected_at: float | None = None

    def attach(self, journal: Journal, nc: Client) -> None:
        self.journal, self.nc = journal, nc

    async def flush(self) -> int:
        """Publish everything the journal's outbox holds and wait until the bus confirmed it (fills
        acknowledged by their stream); the confirmed rows are deleted. Returns how many were published."""
        assert self.journal is not None and self.nc is not None
        sent = 0
        while self.nc.is_connected:
            published = await self.publish_new()
            await self._confirm()
            if not published:
                break
            sent += published
        return sent

    async def publish_new(self) -> int:
        """Publish the outbox rows after the cursor, in order, without waiting for anything: the fill is on
        the wire at once, and :meth:`_confirm` deletes each row once the bus has it."""
        assert self.journal is not None and self.nc is not None
        async with self._publish_lock:  # one publisher at a time, or rows would go out twice or reordered
            published = 0
            while self.nc.is_connected:
                items = self.journal.outbox(_BATCH, after=self._published_upto)
                if not items:
                    break
                for item in items:
                    # Fills are captured by the FILLS stream (one message per deal: Nats-Msg-Id). A plain
                    # publish, not a JetStream one: an agent in its own NATS account exports broker.* as a
                    # stream, through which the stream's ack could never come back to it.
                    headers = self._fill_headers(item.payload) if item.kind == "fill" else None
                    await self.nc.publish(item.subject, item.payload, headers=headers)
                    self._unconfirmed.append((item.id, None))
                    self._published_upto = item.id
                now = time.monotonic()
                self._recent.extend((now, item.subject, item.payload) for item in items)
                published += len(items)
                if len(items) < _BATCH:  # all there was: no second query for an empty answer
                    break
            return published

    async def _confirm(self) -> None:
        """Wait for the server to have what was published (a PING round trip), then delete those outbox
        rows. On failure the cursor goes back: they are published again."""
        assert self.journal is not None and self.nc is not None
        pending, self._unconfirmed = self._unconfirmed, []
        if not pending:
            return
        try:
            await self.nc.flush(timeout=5)
            acks = [ack for _, ack in pending if ack is not None]
            if acks:
                await asyncio.wait_for(asyncio.gather(*acks), 5)
        except BaseException:
            self._published_upto = min(self._published_upto, pending[0][0] - 1)
            raise
        self._failpoints.hit("after_publish")
        self.journal.remove_outbox([row for row, _ in pending])

    def _fill_headers(self, payload: bytes) -> dict[str, str]:
        """One message per deal in the stream, however often it is published (replays, recovery)."""
        return {"Nats-Msg-Id": f"fill-{self.account}-{json.loads(payload)['deal']}"}

    def disconnected(self) -> None:
        self._disconnected_at = time.monotonic()

    async def replay_recent(self) -> None:
        """After a reconnect: publish the last few seconds' events again (at least once)."""
        await asyncio.sleep(REPLAY_DELAY_S)  # let the subscribers re-subscribe on the restarted server first
        if self.nc is not None and self.nc.is_connected:
            since = (self._disconnected_at or time.monotonic()) - REPLAY_WINDOW_S
            replay = [(subject, payload) for stamp, subject, payload in self._recent if stamp >= since]
            with contextlib.suppress(Exception):
                for subject, payload in replay:
                    fill = subject.startswith("broker.fill.")
                    headers = self._fill_headers(payload) if fill else None
                    await self.nc.publish(subject, payload, headers=headers)
            log.info(
                "nats reconnected: recent events published again", account=self.account, count=len(replay)
            )
            self.wake.set()

    async def run(self) -> None:
        """Confirm and clean up what the order path published, and publish what it could not."""
        while not self.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), 1.0)
            self.wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # NATS or the fills stream away: keep the events, try again
                log.warning("outbox not delivered yet", account=self.account, error=str(exc))
                await asyncio.sleep(0.5)
