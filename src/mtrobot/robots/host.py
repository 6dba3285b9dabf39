"""The robot host: an account's portfolio running inside its agent (or a backtest). See docs/robots.md.

Inputs: ticks (pulled from the market-data port by the host's pump, or fed by a backtest), the broker's
fills and order updates for the robots' orders, the portfolio document (hot-loaded), and the trader's
pause / resume / flatten. Outputs: OrderRequests through ``submit`` (the agent publishes them on
``orders.submitted.{account}.{symbol}`` with a ``Nats-Msg-Id``), RobotEvents for the activity log, and
the robots' states for the account snapshot.

Each allocation is a :class:`~mtrobot.robots.slot.Slot`. Ticks update every slot's bar builder at once;
a closed bar, a fill or an update becomes an event in the slot's queue, which the slot's worker handles
one at a time: read the positions, call the robot's hook on its own thread (with a time limit), plan the
intents (sizing, pre-trade risk) and submit them. A robot that fails is paused alone; the others go on.
A backtest sets ``concurrent=False``: events are handled at once, in order, and hooks run inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mtrobot.broker.structures import Tick
from mtrobot.core.events import Fill, OrderUpdate, RobotEvent
from mtrobot.hub.schemas import Allocation, PortfolioConfig
from mtrobot.logging import get_logger
from mtrobot.robots.api import Quote
from mtrobot.robots.bars import BarBuilder
from mtrobot.robots.catalogue import Catalogue, ParamsRefused, validate_params
from mtrobot.robots.hooks import HookRunner, InlineRunner, ThreadRunner
from mtrobot.robots.market import MarketData, MarketDataError
from mtrobot.robots.orders import flatten_requests
from mtrobot.robots.outbox import Outbox, OutboxPorts, SentOrder, Submit
from mtrobot.robots.pump import TickPump
from mtrobot.robots.risk import EquityGuards
from mtrobot.robots.slot import Slot, SlotState, slot_code
from mtrobot.robots.watch import EquityWatch
from mtrobot.robots.worker import SlotEvents

log = get_logger(__name__)

EventSink = Callable[[RobotEvent], Awaitable[None] | None]


@dataclass(frozen=True)
class HostOptions:
    hook_timeout_s: float = 5.0
    poll_interval_s: float | None = 0.5
    """How often the pump reads new ticks; None: no pump (the caller feeds ticks, as a backtest does)."""
    concurrent: bool = True
    """Each robot on its own worker and thread; False: inline and in order (backtests)."""
    settle_timeout_s: float = 10.0
    """How long a closed bar waits for the robot's previous orders to be confirmed before it is skipped."""
    equity_interval_ms: int = 1000
    """Market time between two checks of the equity guards."""
    submit_attempts: int = 3
    submit_retry_s: float = 0.5
    keep_sent: int | None = 10_000
    start_retry_s: float = 5.0


def wall_clock() -> datetime:
    return datetime.now(UTC)


class RobotHost:
    def __init__(
        self,
        account: str,
        market: MarketData,
        submit: Submit,
        catalogue: Catalogue,
        portfolio: PortfolioConfig | None = None,
        *,
        on_event: EventSink | None = None,
        options: HostOptions | None = None,
        clock: Callable[[], datetime] = wall_clock,
    ) -> None:
        self.account = account
        self.market = market
        self.catalogue = catalogue
        self.options = options or HostOptions()
        self._on_event = on_event
        self._clock = clock
        self._portfolio = portfolio or PortfolioConfig()
        self._guards = EquityGuards(self._portfolio.risk)
        self._watch = EquityWatch(market, self._guards, self.options.equity_interval_ms)
        self._slots: dict[tuple[str, str, str], Slot] = {}
        self._paused: str | None = None
        self._last_ms = 0
        self._pump: TickPump | None = None
        self._started = False
        self._lock = asyncio.Lock()
        self.events: deque[RobotEvent] = deque(maxlen=1000)
        self.outbox: Outbox = Outbox(
            OutboxPorts(
                account=account,
                market=market,
                submit=submit,
                clock=clock,
                risk=lambda: self._portfolio.risk,
                paused=lambda: self._paused,
                slots=lambda: self._slots.values(),
                say=lambda slot, kind, text: self._emit(kind, text, slot),
                pause=lambda slot, reason: self._set_state(slot, SlotState.PAUSED, reason),
            ),
            attempts=self.options.submit_attempts,
            retry_s=self.options.submit_retry_s,
            keep=self.options.keep_sent,
        )
        self.slot_events = SlotEvents(
            market,
            self.outbox,
            concurrent=self.options.concurrent,
            settle_timeout_s=self.options.settle_timeout_s,
            market_ms=lambda: self._last_ms,
            say=lambda slot, kind, text: self._emit(kind, text, slot),
            pause=lambda slot, reason: self._set_state(slot, SlotState.PAUSED, reason),
        )

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        self._started = True
        async with self._lock:
            await self._apply(self._portfolio)
        if self.options.poll_interval_s is not None:
            self._pump = TickPump(
                self.market,
                self.feed,
                self._symbols,
                self._first_tick_ms,
                self.options.poll_interval_s,
                f"robots-pump-{self.account}",
            )
            self._pump.start()

    async def stop(self) -> None:
        if self._pump is not None:
            await self._pump.stop()
            self._pump = None
        async with self._lock:
            for slot in list(self._slots.values()):
                await self._stop_slot(slot, "the agent stopped")
            self._slots.clear()
        self._started = False

    async def set_portfolio(self, config: PortfolioConfig) -> None:
        """Hot-load a new portfolio: changed or removed allocations stop (their positions stay open),
        new ones start; unchanged ones keep running undisturbed."""
        async with self._lock:
            if self._started and config == self._portfolio:
                # The same portfolio again (the agent's hand-off copy after the hub's, a watch replaying
                # the current revision): nothing changes, so nothing is said (no second "Portfolio loaded").
                return
            self._portfolio = config
            self._guards.risk = config.risk
            if self._started:
                await self._apply(config)

    @property
    def portfolio(self) -> PortfolioConfig:
        return self._portfolio

    @property
    def sent(self) -> deque[SentOrder]:
        """The orders handed to the order path, oldest first (the last ``keep_sent``)."""
        return self.outbox.sent

    @property
    def market_time_ms(self) -> int:
        """The trade server's time of the newest tick the host has seen (ms)."""
        return self._last_ms

    def robots(self) -> list[dict[str, Any]]:
        """The robots' states, for ``AccountSnapshot.robots``."""
        return [slot.status() for slot in self._slots.values()]

    # -- portfolio -----------------------------------------------------------------------------------
    async def _apply(self, config: PortfolioConfig) -> None:
        wanted = {} if not config.active else {_key(a): a for a in config.robots if a.enabled}
        for key, slot in list(self._slots.items()):
            if wanted.get(key) != slot.allocation:
                await self._stop_slot(slot, "the portfolio changed")
                del self._slots[key]
        for key, allocation in wanted.items():
            if key not in self._slots:
                self._slots[key] = await self._new_slot(allocation)
        if not config.active:
            await self._emit("portfolio", "The portfolio is not active: no robot trades on this account.")
            return
        states = ", ".join(f"{s.label} ({s.state.value})" for s in self._slots.values()) or "no robot"
        await self._emit("portfolio", f"Portfolio loaded: {states}.")

    async def _new_slot(self, allocation: Allocation) -> Slot:
        robot = self.catalogue.get(allocation.robot)
        slot = Slot(self.account, allocation, robot)
        if robot is None:
            await self._set_state(
                slot, SlotState.REFUSED, f"there is no robot named {allocation.robot!r} here"
            )
            return slot
        try:
            slot.params = validate_params(robot, allocation.params)
        except ParamsRefused as exc:
            await self._set_state(slot, SlotState.REFUSED, f"its parameters do not fit: {exc}")
            return slot
        if self._paused is not None:
            slot.state, slot.reason = SlotState.PAUSED, self._paused
        await self._prepare(slot)
        return slot

    async def _prepare(self, slot: Slot) -> None:
        """Read the symbol and the recent bars, then start the robot; on a read failure the slot stays
        ``starting`` and the next ticks try again."""
        symbol, timeframe = slot.allocation.symbol, slot.allocation.timeframe
        try:
            slot.info = await self.market.symbol(symbol)
            bars = await self.market.bars(symbol, timeframe, (slot.bars.maxlen or 1) + 1)
        except MarketDataError as exc:
            slot.reason = f"waiting for the terminal ({exc})"
            slot.retry_at = self._last_ms + int(self.options.start_retry_s * 1000)
            return
        slot.builder = BarBuilder(timeframe, slot.info.point)
        if bars:
            slot.bars.extend(bars[:-1])
            slot.builder.seed(bars[-1])
        if slot.state is SlotState.STARTING:
            await self._launch(slot)

    async def _launch(self, slot: Slot) -> None:
        assert slot.robot_class is not None
        slot.robot = slot.robot_class(slot.params)
        slot.runner = self._runner(slot)
        await self._set_state(slot, SlotState.RUNNING, "")
        if self.options.concurrent and slot.worker is None:
            slot.worker = asyncio.create_task(
                self.slot_events.work(slot), name=f"robot-{self.account}-{slot.label}"
            )
        await self.slot_events.dispatch(slot, "start", None)

    def _runner(self, slot: Slot) -> HookRunner:
        if not self.options.concurrent:
            return InlineRunner()
        return ThreadRunner(f"{self.account}-{slot.allocation.robot}", self.options.hook_timeout_s)

    async def _stop_slot(self, slot: Slot, why: str) -> None:
        if slot.worker is not None:
            slot.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await slot.worker
            slot.worker = None
        if slot.running:
            await self.slot_events.handle(slot, "stop", None)
        if slot.runner is not None:
            slot.runner.close()
        if slot.state is not SlotState.REFUSED:
            slot.state, slot.reason = SlotState.STOPPED, why

    # -- control -------------------------------------------------------------------------------------
    async def pause(self, reason: str = "paused by the trader") -> None:
        """Pause every robot of the account (they keep their positions)."""
        async with self._lock:
            await self._pause_all(reason)

    async def resume(self) -> None:
        """Resume every paused robot with a fresh instance; the drawdown guard measures from now on."""
        async with self._lock:
            self._paused = None
            self._guards.rebase()
            for slot in self._slots.values():
                if slot.state is SlotState.PAUSED:
                    slot.state = SlotState.STARTING
                    if slot.runner is not None:
                        slot.runner.close()
                    await self._prepare(slot)
                    if slot.running:
                        await self._emit("resumed", f"Robot {slot.label} resumed.", slot)

    async def flatten(self, reason: str = "asked by the trader") -> int:
        """Close every open position of the account; returns how many closes were sent."""
        positions = await self.market.positions()
        code = slot_code(self.account, "flatten")
        requests = flatten_requests(self.account, code, positions, self._last_ms, self._clock())
        await self._emit("flatten", f"Closing {len(requests)} open positions: {reason}.")
        for request in requests:
            await self.outbox.deliver(request)
        return len(requests)

    async def _pause_all(self, reason: str) -> None:
        self._paused = reason
        for slot in self._slots.values():
            if slot.state in (SlotState.RUNNING, SlotState.STARTING):
                slot.state, slot.reason = SlotState.PAUSED, reason

    # -- inputs --------------------------------------------------------------------------------------
    async def feed(self, symbol: str, ticks: Sequence[Tick]) -> None:
        """New prices of ``symbol``, oldest first (the pump calls this; so does a backtest)."""
        slots = [s for s in self._slots.values() if s.allocation.symbol == symbol]
        # a slot still waiting for the terminal retries once the market has moved on: judged by these
        # ticks too (on a held clock they may be the only ones for a long time)
        newest = max([self._last_ms, *(t.time_msc for t in ticks[-1:])])
        for slot in slots:
            waiting = slot.builder is None and slot.state in (SlotState.STARTING, SlotState.PAUSED)
            if waiting and newest >= slot.retry_at:
                await self._prepare(slot)
        for tick in ticks:
            self._last_ms = max(self._last_ms, tick.time_msc)
            quote = Quote(tick.time_msc, tick.bid, tick.ask)
            for slot in slots:
                if slot.builder is None:
                    continue
                slot.quote = quote
                bar = slot.builder.update(tick.time_msc, tick.bid, tick.ask)
                if bar is not None:
                    slot.bars.append(bar)
                    await self.slot_events.dispatch(slot, "bar", (bar, tuple(slot.bars), quote))
        for slot in slots:
            wants = slot.running and slot.robot_class is not None and slot.robot_class.wants_ticks()
            if ticks and wants and not slot.tick_queued:
                slot.tick_queued = True
                await self.slot_events.dispatch(slot, "tick", None)
        if ticks:
            await self._check_equity()

    async def on_fill(self, fill: Fill) -> None:
        slot = self.outbox.routes.get(fill.order_id)
        if slot is not None:
            await self.slot_events.dispatch(slot, "fill", fill)

    async def on_order_update(self, update: OrderUpdate) -> None:
        slot = self.outbox.routes.get(update.order_id)
        if slot is None:
            return
        if update.state.is_terminal:
            slot.resolve(update.order_id)
        await self.slot_events.dispatch(slot, "update", update)

    async def drain(self) -> None:
        """Return once every event queued so far has been handled (tests, and a clean stop)."""
        await self.slot_events.drain(self._slots.values())

    # -- guards --------------------------------------------------------------------------------------
    async def _check_equity(self) -> None:
        if self._paused is not None:
            return
        breach = await self._watch.check(self._last_ms)
        if breach is None:
            return
        await self._emit("guard", f"{breach.message} Every robot of the account is paused.")
        await self._pause_all(breach.message)
        if self._portfolio.risk.flatten_on_breach:
            try:
                await self.flatten(f"the {breach.kind.replace('_', ' ')} guard fired")
            except Exception as exc:
                await self._emit("flatten", f"Could not close the positions after the guard fired: {exc}.")

    # -- pump ----------------------------------------------------------------------------------------
    def _symbols(self) -> list[str]:
        return sorted({s.allocation.symbol for s in self._slots.values()})

    def _first_tick_ms(self, symbol: str) -> int:
        """Where the pump starts reading: the start of the forming bar the warm-up seeded, else the
        symbol's last quote (0 on a simulator replay that has not started: from its first tick on)."""
        starts = []
        for slot in self._slots.values():
            if slot.allocation.symbol != symbol:
                continue
            forming = slot.builder.forming() if slot.builder is not None else None
            if forming is not None:
                starts.append(forming.time * 1000)
            elif slot.info is not None and slot.info.time > 0:
                starts.append(slot.info.time * 1000)
        return min(starts) - 1 if starts else 0

    # -- reporting -----------------------------------------------------------------------------------
    async def _set_state(self, slot: Slot, state: SlotState, reason: str) -> None:
        slot.state, slot.reason = state, reason
        if state is SlotState.PAUSED:
            await self._emit("paused", f"Robot {slot.label} paused: {reason}.", slot)
        elif state is SlotState.REFUSED:
            await self._emit("refused", f"Robot {slot.label} cannot run: {reason}.", slot)

    async def _emit(self, kind: str, message: str, slot: Slot | None = None) -> None:
        event = RobotEvent(
            account=self.account,
            robot=slot.label if slot else "",
            kind=kind,
            message=message,
            ts=self._clock(),
        )
        self.events.append(event)
        log.info("robot event", account=self.account, robot=event.robot, kind=kind, message=message)
        if self._on_event is None:
            return
        try:
            result = self._on_event(event)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # the activity log is best effort; trading goes on
            log.warning("robot event not delivered", error=repr(exc))


def _key(allocation: Allocation) -> tuple[str, str, str]:
    return allocation.robot, allocation.symbol, allocation.timeframe
