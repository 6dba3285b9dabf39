"""One robot's events, one at a time: read the account, call the robot's hook on its own thread, hand
what it asked for to the outbox.

Live, each slot has a worker task and a bounded queue (``dispatch`` only enqueues, so the tick pump and
the bus callbacks never wait for a robot); a backtest handles each event at once (``concurrent=False``).
A closed bar waits for the robot's previous orders to settle, so it never decides on stale positions; a
hook that raises or overruns pauses its robot alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import TradePosition
from mtrobot.logging import get_logger
from mtrobot.robots.api import AccountView, Bar, Context, RobotError
from mtrobot.robots.hooks import HookTimeout
from mtrobot.robots.market import MarketData, MarketDataError
from mtrobot.robots.outbox import Outbox
from mtrobot.robots.slot import Slot

log = get_logger(__name__)

Say = Callable[[Slot, str, str], Awaitable[None]]
Pause = Callable[[Slot, str], Awaitable[None]]


def bar_time(bar: Bar) -> str:
    return datetime.fromtimestamp(bar.time, UTC).strftime("%Y-%m-%d %H:%M")


class SlotEvents:
    def __init__(
        self,
        market: MarketData,
        outbox: Outbox,
        *,
        concurrent: bool,
        settle_timeout_s: float,
        market_ms: Callable[[], int],
        say: Say,
        pause: Pause,
    ) -> None:
        self._market = market
        self._outbox = outbox
        self._concurrent = concurrent
        self._settle_s = settle_timeout_s
        self._market_ms = market_ms
        self._say = say
        self._pause = pause

    async def dispatch(self, slot: Slot, kind: str, payload: Any) -> None:
        if not self._concurrent:
            slot.tick_queued = False
            await self.handle(slot, kind, payload)
            return
        try:
            slot.queue.put_nowait((kind, payload))
        except asyncio.QueueFull:
            log.error("robot event dropped: queue full", robot=slot.label, kind=kind)

    async def work(self, slot: Slot) -> None:
        while True:
            kind, payload = await slot.queue.get()
            if kind == "tick":
                slot.tick_queued = False
            try:
                await self.handle(slot, kind, payload)
            finally:
                slot.queue.task_done()

    async def drain(self, slots: Iterable[Slot]) -> None:
        for slot in list(slots):
            if slot.worker is not None and not slot.worker.done():
                await slot.queue.join()

    async def handle(self, slot: Slot, kind: str, payload: Any) -> None:
        try:
            await self._handle(slot, kind, payload)
        except MarketDataError as exc:
            what = f"the {bar_time(payload[0])} bar" if kind == "bar" else f"a {kind}"
            await self._say(slot, "skipped", f"Skipped {what}: could not read the account ({exc}).")
        except Exception as exc:  # a bug of ours must not end the worker: log it and go on
            log.error("robot host error", robot=slot.label, kind=kind, error=repr(exc), exc_info=exc)

    async def _handle(self, slot: Slot, kind: str, payload: Any) -> None:
        if not slot.running or slot.robot is None:
            return
        robot = slot.robot
        if (
            kind == "bar"
            and slot.in_flight
            and self._concurrent
            and not await self._settled(slot, payload[0])
        ):
            return
        positions = await self._market.positions()
        if kind == "bar":
            bars, now_ms = payload[1], payload[2].time_msc
        else:
            bars, now_ms = tuple(slot.bars), max(self._market_ms(), slot.quote.time_msc if slot.quote else 0)
        ctx = await self._context(slot, bars, positions, now_ms)
        hooks: dict[str, Callable[[], None]] = {
            "start": lambda: robot.on_start(ctx),
            "bar": lambda: robot.on_bar(ctx, payload[0]),
            "tick": lambda: robot.on_tick(ctx, slot.quote) if slot.quote else None,
            "fill": lambda: robot.on_fill(ctx, payload),
            "update": lambda: robot.on_order_update(ctx, payload),
            "stop": lambda: robot.on_stop(ctx),
        }
        if kind == "bar":
            slot.last_bar = payload[0].time
        if await self._call(slot, kind, hooks[kind]) and ctx.intents:
            await self._outbox.execute(slot, ctx, positions)

    async def _settled(self, slot: Slot, bar: Bar) -> bool:
        try:
            await asyncio.wait_for(slot.settled.wait(), self._settle_s)
            return True
        except TimeoutError:
            waiting = ", ".join(slot.in_flight)
            text = f"Skipped the {bar_time(bar)} bar: orders {waiting} are not confirmed yet."
            await self._say(slot, "skipped", text)
            return False

    async def _context(
        self, slot: Slot, bars: Sequence[Bar], positions: Sequence[TradePosition], now_ms: int
    ) -> Context:
        info = slot.info
        assert info is not None
        account = await self._market.account()
        return Context(
            symbol=info.name,
            timeframe=slot.allocation.timeframe,
            digits=info.digits,
            point=info.point,
            now_ms=now_ms,
            bars=bars,
            quote=slot.quote,
            positions=slot.views(positions),
            account=AccountView(account.currency, account.balance, account.equity, account.margin_free),
            hedging=account.margin_mode == mt5.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,
        )

    async def _call(self, slot: Slot, hook: str, fn: Callable[[], None]) -> bool:
        assert slot.runner is not None
        try:
            await slot.runner.run(fn)
            return True
        except HookTimeout as exc:
            reason = f"its on_{hook} hook did not return within {exc.seconds:g} s"
        except RobotError as exc:
            reason = str(exc)
        except Exception as exc:
            reason = f"its on_{hook} hook raised {type(exc).__name__}: {exc}"
        if slot.running:
            await self._pause(slot, reason)
        return False
