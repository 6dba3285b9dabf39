"""The aggregator of one account: raw events in, at most one AccountSnapshot per ``min_interval_s`` out.

It reads the terminal through a read-only view (:class:`AccountReader`: account, positions, pending orders,
deal history, the session's connection state) and hears the order path and the robots through in-process
callbacks (``on_fill``, ``on_order_update``, ``on_tick``, ``on_robots``, ``on_connection``). Everything
becomes a raw event of :mod:`mtrobot.agent.account_state`; a snapshot is published (``snapshot.{account}``
and KV ``account_snapshots``, through a :class:`SnapshotSink`) only when something a trader can see changed,
and never more often than every ``min_interval_s``: the last one always carries the latest state.

Polling: MT5 pushes nothing, so the terminal is read every ``poll_busy_s`` while the account has positions or
pending orders (equity moves with every tick), every ``poll_idle_s`` otherwise, and at once (at most every
``poll_min_s``) after a fill, a reconnect, or an order update saying the broker answered
(:data:`POKING_STATES`); an order's steps before that (received, validated, sent) change nothing at the
broker yet and wait for the next regular poll.

``seq`` is a hybrid clock: never below the previous one plus one, nor below the wall clock in microseconds,
nor below the last published ``seq`` found in KV at start. So it increases strictly across agent restarts
without any state of its own, even when the clock steps back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from mtrobot.broker.structures import AccountInfo, Tick, TradeDeal, TradeOrder, TradePosition
from mtrobot.core.events import AccountSnapshot, BrokerError, ConnectionState, Fill, OrderUpdate
from mtrobot.core.lifecycle import OrderState
from mtrobot.logging import get_logger

from .account_state import (
    RECENT_TRADES,
    AccountSeen,
    AccountState,
    ConnectionSeen,
    DealsSeen,
    FillSeen,
    OrdersSeen,
    PositionsSeen,
    RawEvent,
    RobotsSeen,
    TickSeen,
)

log = get_logger(__name__)

DEAL_HISTORY_S = 7 * 24 * 3600
"""How far back the deal history is read at start, for the recent trades."""

POKING_STATES = frozenset(OrderState) - {
    OrderState.RECEIVED, OrderState.VALIDATED, OrderState.SENT, OrderState.DUPLICATE,
}  # fmt: skip
"""Order updates after which the terminal is read at once: the broker answered (a pending order placed, a
fill, a refusal, a cancel or an expiry) or its answer was lost (``unknown``). Before it (received,
validated, sent, or a duplicate refused by the platform) nothing at the broker changed yet: three of a
market order's four updates."""


class AccountReader(Protocol):
    """A read-only view of the account's terminal link. Each read returns ``None`` when it failed."""

    def connection(self) -> ConnectionState: ...

    async def account_info(self) -> AccountInfo | None: ...

    async def positions_get(self) -> tuple[TradePosition, ...] | None: ...

    async def orders_get(self) -> tuple[TradeOrder, ...] | None: ...

    async def history_deals_get(self, date_from: int, date_to: int) -> tuple[TradeDeal, ...] | None: ...


class SnapshotSink(Protocol):
    async def last_seq(self) -> int | None:
        """The ``seq`` of the last snapshot published for the account before this start, if known."""
        ...

    async def publish(self, snapshot: AccountSnapshot) -> None: ...


class SeqClock:
    """Strictly increasing, and at least the wall clock in microseconds (see the module docstring)."""

    def __init__(self, floor: int = 0, wall: Callable[[], float] = time.time) -> None:
        self._last = floor
        self._wall = wall

    def next(self) -> int:
        self._last = max(self._last + 1, int(self._wall() * 1_000_000))
        return self._last


class Aggregator:
    """See the module docstring. ``start()`` / ``stop()``; the ``on_*`` callbacks never block."""

    def __init__(
        self,
        account: str,
        reader: AccountReader,
        sink: SnapshotSink,
        *,
        min_interval_s: float = 0.5,
        poll_busy_s: float = 0.5,
        poll_idle_s: float = 5.0,
        poll_min_s: float = 0.1,
        publish_timeout_s: float = 5.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.account = account
        self.state = AccountState(account)
        self._reader = reader
        self._sink = sink
        self.min_interval_s = min_interval_s
        self.poll_busy_s = poll_busy_s
        self.poll_idle_s = poll_idle_s
        self.poll_min_s = poll_min_s
        self._publish_timeout_s = publish_timeout_s
        self._wall = wall
        self._seq = SeqClock(0, wall)
        self._dirty = asyncio.Event()
        self._poke = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._deals_since: int | None = None
        self.events_in = 0
        self.snapshots_out = 0
        self.last_published: AccountSnapshot | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        floor: int | None = None
        try:
            async with asyncio.timeout(self._publish_timeout_s):
                floor = await self._sink.last_seq()
        except Exception as exc:  # the clock alone still keeps seq increasing
            log.info("last seq not readable; the clock decides", account=self.account, error=str(exc))
        self._seq = SeqClock(floor or 0, self._wall)
        self._tasks = [
            asyncio.create_task(self._poll_loop(), name=f"aggregator-poll-{self.account}"),
            asyncio.create_task(self._publish_loop(), name=f"aggregator-publish-{self.account}"),
        ]

    async def stop(self) -> None:
        """Stop polling and publish a last snapshot saying the agent stopped."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.apply(ConnectionSeen(ConnectionState.STOPPED))
        with contextlib.suppress(Exception):
            await self._publish()

    # -- callbacks (in-process events of the order path and the robots) -----------------------------

    def apply(self, event: RawEvent) -> bool:
        """Apply one raw event; schedules a snapshot if the trader can see the change."""
        self.events_in += 1
        changed = self.state.apply(event)
        if changed:
            self._dirty.set()
        return changed

    def on_fill(self, fill: Fill) -> None:
        if fill.account == self.account:
            self.apply(FillSeen(fill, self._wall()))  # a fill is news: its deal time is the server's now
            self._poke.set()  # positions and balance changed at the broker: read them now

    def on_order_update(self, update: OrderUpdate) -> None:
        if update.account == self.account:
            self.events_in += 1
            if update.state in POKING_STATES:
                self._poke.set()

    def on_error(self, error: BrokerError) -> None:
        self.events_in += 1  # the activity log tells the trader; the account itself did not change

    def on_tick(self, symbol: str, tick: Tick) -> None:
        self.apply(TickSeen(symbol, tick.bid, tick.ask))

    def on_robots(self, robots: list[dict[str, Any]]) -> None:
        self.apply(RobotsSeen(tuple(dict(r) for r in robots)))

    def on_connection(self, connection: ConnectionState) -> None:
        if self.apply(ConnectionSeen(connection)) and connection is ConnectionState.CONNECTED:
            self._poke.set()

    # -- loops -------------------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception as exc:  # a broken read is retried at the next poll
                log.warning("account poll failed", account=self.account, error=repr(exc))
            interval = self.poll_busy_s if self.state.exposed else self.poll_idle_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):  # no task per wait, unlike wait_for on 3.11
                    await self._poke.wait()
            self._poke.clear()
            await asyncio.sleep(self.poll_min_s)

    async def poll(self) -> None:
        """Read the terminal once (nothing while the session is not connected). When a position opened, closed
        or changed volume, or the balance changed, the deal history since the newest deal known is read too:
        trades made outside the platform (by hand in a terminal) reach the recent trades as well. A price
        moving reads no history."""
        self.on_connection(self._reader.connection())
        if self.state.connection is not ConnectionState.CONNECTED:
            return
        moved = False
        info = await self._reader.account_info()
        if info is not None:
            balance = self.state.money.get("balance")
            moved |= self.apply(AccountSeen(info)) and self.state.money.get("balance") != balance
        positions = await self._reader.positions_get()
        if positions is not None:
            held = self._held()
            moved |= self.apply(PositionsSeen(tuple(positions))) and self._held() != held
        orders = await self._reader.orders_get()
        if orders is not None:
            self.apply(OrdersSeen(tuple(orders)))
        if moved or self._deals_since is None:
            await self._read_deals()

    def _held(self) -> set[tuple[int, float]]:
        """The open positions and their volumes: a price moving changes them not, a deal does."""
        return {(ticket, row["volume"]) for ticket, row in self.state.positions.items()}

    async def _read_deals(self) -> None:
        now = int(self._wall())
        since = self._deals_since if self._deals_since is not None else now - DEAL_HISTORY_S
        # MT5 times are the trade server's clock, hours away from ours: the upper bound leaves a day's room.
        deals = await self._reader.history_deals_get(since, now + 24 * 3600)
        if deals is not None:
            self.apply(DealsSeen(tuple(deals)[-RECENT_TRADES:]))
            self._deals_since = max([since, *(d.time - 60 for d in deals)])

    async def _publish_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = -self.min_interval_s
        while True:
            await self._dirty.wait()
            wait = last + self.min_interval_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)  # changes meanwhile join this snapshot: that is the throttle
            last = loop.time()
            try:
                await self._publish()
            except Exception as exc:  # the bus is away: the state stays dirty, the next round retries
                log.warning("snapshot not published", account=self.account, error=repr(exc))
                self._dirty.set()

    async def _publish(self) -> None:
        self._dirty.clear()
        snapshot = self.state.snapshot(self._seq.next(), datetime.fromtimestamp(self._wall(), UTC))
        try:
            async with asyncio.timeout(self._publish_timeout_s):
                await self._sink.publish(snapshot)
        except BaseException:
            self._dirty.set()
            raise
        self.snapshots_out += 1
        self.last_published = snapshot
