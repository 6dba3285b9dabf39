"""What runs in a connector, once :class:`~mtrobot.connector.service.Connector` has wired its parts: recovery
and the intake (the durable consumer's messages, one order at a time under the order lock, the dead letter),
the order watch and the periodic reconciliation.

A message is acknowledged only after its outcome is in the journal; the outcome's events go out through the
outbox straight after (see :mod:`.outbox`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from mtrobot.bus import layout, subjects
from mtrobot.bus.connect import rewind_to_ack_floor
from mtrobot.bus.pull import PullTaker
from mtrobot.logging import get_logger

from .executor import OrderExecutor
from .failpoints import Failpoints
from .intake import CrashReorder, Parsed, answer, dead_letter, read_order
from .journal import Journal
from .metrics import ConnectorMetrics
from .options import OptionsHolder
from .outbox import Outbox
from .reconcile import Reconciler
from .session import Session

log = get_logger(__name__)

PREDECESSOR_PULL_S = 1.5
"""How long a take-over waits for a dead run's last pull request to expire (the intake's fetch asks for 1 s):
one delivered to it after the rewind would be left pending again."""


def durable_name(account: str) -> str:
    return f"connector_{account}"


@dataclass
class Wired:
    """The parts a connector's loops run on, built by :class:`~mtrobot.connector.service.Connector`."""

    account: str
    options: OptionsHolder
    journal: Journal
    nc: Client
    js: JetStreamContext
    session: Session
    executor: OrderExecutor
    reconciler: Reconciler
    outbox: Outbox
    metrics: ConnectorMetrics
    failpoints: Failpoints
    order_lock: asyncio.Lock
    """One order at a time per account; the reconciler takes it too."""


class ConnectorLoops:
    """The intake, the order watch and the reconciliation of one connector; each loop ends when ``stopping``
    is set (or when cancelled)."""

    def __init__(self, wired: Wired) -> None:
        self.account = wired.account
        self.options = wired.options
        self.journal = wired.journal
        self.nc = wired.nc
        self.js = wired.js
        self.session = wired.session
        self.executor = wired.executor
        self.reconciler = wired.reconciler
        self.outbox = wired.outbox
        self.metrics = wired.metrics
        self.failpoints = wired.failpoints
        self.order_lock = wired.order_lock
        self.stopping = False
        self.intake_running = False
        self._pull: PullTaker | None = None
        """The intake's pull subscription on the account's durable consumer, while the intake runs."""
        self._dead_letters = 0
        self._dead_letter_logged = -1.0

    # -- intake ------------------------------------------------------------------------------------

    async def _recover(self) -> None:
        """Startup is recovery: finish every order the journal has not seen to a terminal state."""
        for entry in self.journal.open_entries():
            async with self.order_lock:
                current = self.journal.get(entry.order_id)
                if current is not None:
                    log.info("recovering order", order_id=current.order_id, state=current.state.value)
                    await self.executor.execute(current)
        self.outbox.wake.set()

    async def _subscribe(self) -> Any:
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

    async def _take_over(self) -> CrashReorder:
        """What a killed predecessor left fetched but unacknowledged is delivered again at once: this run
        holds the account's lock, so nobody else is working on those messages, and the consumer is rewound
        to its ack floor (they come back in stream order, with every later one; one acknowledged out of
        order comes back too and the journal, keyed by stream sequence, finds it finished). If the server
        refuses, they come back after ``ack_wait`` and :class:`CrashReorder` keeps the order meanwhile."""
        info = await self._consumer_info()
        pending = int(info.num_ack_pending or 0)
        if not pending or not self.options.current.take_over_at_start:
            return self._crash_reorder(info)
        deadline = time.monotonic() + PREDECESSOR_PULL_S
        while info.num_waiting and time.monotonic() < deadline:  # its last pull request, about to expire
            await asyncio.sleep(0.1)
            info = await self._consumer_info()
        try:
            start = await rewind_to_ack_floor(self.nc, layout.order_consumer_reset(self.account), 2.0)
        except Exception as exc:  # an older server, or a bus identity without the reset
            log.warning("could not take over what a previous run left unacknowledged",
                        account=self.account, pending=pending, error=repr(exc))  # fmt: skip
            return self._crash_reorder(info)
        log.warning(
            "messages of a previous run were never acknowledged: delivered again now, in order",
            account=self.account,
            pending=pending,
            from_seq=start,
        )
        return self._crash_reorder(await self._consumer_info())

    async def _consumer_info(self) -> Any:
        return await self.js.consumer_info(subjects.ORDERS_STREAM, durable_name(self.account))

    def _crash_reorder(self, info: Any) -> CrashReorder:
        """What is still pending of a killed predecessor's messages (see :class:`CrashReorder`)."""
        opts = self.options.current
        pending, upto = int(info.num_ack_pending or 0), int(info.delivered.stream_seq or 0)
        if pending:
            log.warning(
                "messages of a previous run were never acknowledged: newer ones wait for them",
                account=self.account,
                pending=pending,
                upto_seq=upto,
            )
        return CrashReorder(pending, upto, 3 * opts.ack_wait_s, time.monotonic())

    async def intake(self) -> None:
        await self._recover()
        try:
            await self._intake()
        finally:
            await self._unsubscribe()

    async def _unsubscribe(self) -> None:
        """Give the pull subscription up when the intake ends (stopped or cancelled). Left in place, the reply
        to a fetch cut short by the stop (the server's timeout status, or an order) waits in its queue with
        nobody to read it, and the agent's ``nc.drain()`` waits for that queue until its budget is spent
        (every stop of an agent took its whole grace then). What was delivered but not acknowledged is
        delivered again: at the next start (:meth:`_take_over`) or after ``ack_wait``."""
        taker, self._pull = self._pull, None
        self.intake_running = False
        if taker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(taker.pull.unsubscribe(), 2.0)

    async def _intake(self) -> None:
        reorder: CrashReorder | None = None
        while not self.stopping:
            try:
                if self._pull is None:
                    self._pull = PullTaker(await self._subscribe())
                    reorder = reorder or await self._take_over()
                    self.intake_running = True
                msgs = await self._pull.take(self.options.current.fetch_batch, timeout=1.0)
            except TimeoutError:
                msgs = []
                if reorder is None or not reorder.active:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS restarting: keep trying, the durable consumer keeps our place
                log.warning("intake waiting for NATS", account=self.account, error=str(exc))
                self.intake_running = self._pull is not None and self.nc.is_connected
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
            async with self.order_lock:
                await self.executor.handle_parsed(parsed, seq, published)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        with contextlib.suppress(Exception):  # the outcome is in the journal: its events go out now
            await self.outbox.publish_new()
        self.failpoints.hit("after_publish")
        try:
            await msg.ack()
        except Exception as exc:  # NATS away: the redelivered copy will find the order finished
            log.warning("ack failed; the message will be redelivered", account=self.account, error=str(exc))
        self.outbox.wake.set()  # the outbox loop confirms and cleans up, off the order path

    async def _dead_letter(self, msg: Any, parsed: Parsed, seq: int | None, deliveries: int | None) -> None:
        """Keep an unreadable message aside, answer the sender, acknowledge: it never blocks the intake.
        If the dead-letter stream cannot take it, the message is left for redelivery (nothing is lost)."""
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

    async def reconcile(self, trigger: str) -> None:
        try:
            await self.reconciler.reconcile(trigger)
        except Exception as exc:  # the next interval or reconnect tries again
            log.warning("reconciliation failed", account=self.account, trigger=trigger, error=str(exc))
        finally:
            self.outbox.wake.set()

    async def watch(self) -> None:
        while not self.stopping:
            await asyncio.sleep(self.options.current.pending_poll_s)
            if self.session.ready:
                try:
                    await self.reconciler.watch_open_orders()
                except Exception as exc:
                    log.warning("order watch failed", account=self.account, error=str(exc))
                self.outbox.wake.set()

    async def sync(self) -> None:
        while not self.stopping:
            await asyncio.sleep(self.options.current.sync_interval_s)
            if self.session.ready:
                await self.reconcile("interval")
