"""From a hook's intents to orders handed to the order path: planned (sizing, pre-trade risk) in the order
the robot asked, refused with a sentence or submitted with retries, tracked until the broker settles them,
and remembered (with the market time of the decision) for parity checks and the snapshot.

The robots of an account decide at the same time, each on its own worker, but the account's limits are
shared: planning and submitting happen one batch at a time, and a batch that opens positions counts them
from the positions read under that lock plus every opening order still in flight, so two robots cannot
both take the account's last free place."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from mtrobot.broker.structures import TradePosition
from mtrobot.core.orders import OrderRequest
from mtrobot.hub.schemas import AccountRisk
from mtrobot.logging import get_logger
from mtrobot.robots.api import Context
from mtrobot.robots.market import MarketData
from mtrobot.robots.orders import Batch, Planned, Refused
from mtrobot.robots.slot import MAX_ORDERS_PER_EVENT, Slot

log = get_logger(__name__)

Submit = Callable[[OrderRequest], Awaitable[None]]
MAX_ROUTES = 10_000


@dataclass(frozen=True, slots=True)
class SentOrder:
    """An order the host handed to the order path, with the market time of the decision."""

    order_id: str
    robot: str
    time_msc: int
    action: str
    side: str
    volume: float | None
    position: int | None


@dataclass(frozen=True)
class OutboxPorts:
    """What the outbox needs of its host."""

    account: str
    market: MarketData
    submit: Submit
    clock: Callable[[], datetime]
    risk: Callable[[], AccountRisk]
    paused: Callable[[], str | None]
    slots: Callable[[], Iterable[Slot]]
    say: Callable[[Slot, str, str], Awaitable[None]]
    """``say(slot, kind, message)``: an activity line about the slot."""
    pause: Callable[[Slot, str], Awaitable[None]]


class Outbox:
    def __init__(self, ports: OutboxPorts, *, attempts: int, retry_s: float, keep: int | None) -> None:
        self._ports = ports
        self._attempts = attempts
        self._retry_s = retry_s
        self.sent: deque[SentOrder] = deque(maxlen=keep)
        self.routes: OrderedDict[str, Slot] = OrderedDict()
        self._lock = asyncio.Lock()

    async def execute(self, slot: Slot, ctx: Context, positions: Sequence[TradePosition]) -> None:
        async with self._lock:
            # in flight first, positions second: an order settling in between is counted twice (too
            # cautious), never missed
            in_flight = self._opens_in_flight(slot)
            if any(intent.action == "open" for intent in ctx.intents):
                positions = await self._ports.market.positions()  # fresh: other robots may have traded
            await self._execute(slot, ctx, positions, in_flight)

    async def _execute(
        self, slot: Slot, ctx: Context, positions: Sequence[TradePosition], in_flight: tuple[int, int]
    ) -> None:
        ports = self._ports
        intents = ctx.intents
        if len(intents) > MAX_ORDERS_PER_EVENT:
            text = f"Only the first {MAX_ORDERS_PER_EVENT} of {len(intents)} orders were considered."
            await ports.say(slot, "refused", text)
            intents = intents[:MAX_ORDERS_PER_EVENT]
        batch = Batch(
            ports.account,
            slot,
            ports.market,
            ports.risk(),
            positions,
            in_flight,
            now_ms=ctx.now_ms,
            submitted_at=ports.clock(),
        )
        for index, intent in enumerate(intents):
            if not slot.running:
                return
            if intent.action == "open" and ports.paused() is not None:
                continue
            planned = await batch.plan(index, intent)
            if isinstance(planned, Refused):
                await ports.say(slot, "refused", f"Order not sent: {planned.reason}.")
                continue
            await self._send(slot, planned, ctx.now_ms)

    def _opens_in_flight(self, slot: Slot) -> tuple[int, int]:
        mine = sum(1 for f in slot.in_flight.values() if f.opening)
        total = sum(1 for s in self._ports.slots() for f in s.in_flight.values() if f.opening)
        return mine, total

    async def _send(self, slot: Slot, planned: Planned, now_ms: int) -> None:
        request = planned.request
        slot.track(request.order_id, planned.flight)
        self._route(request.order_id, slot)
        try:
            await self.deliver(request)
        except Exception as exc:
            slot.resolve(request.order_id)
            await self._ports.pause(
                slot, f"order {request.order_id} could not be handed to the order path ({exc})"
            )
            return
        slot.orders_sent += 1
        side, volume, position = planned.side.value, request.volume, request.position
        self.sent.append(
            SentOrder(request.order_id, slot.label, now_ms, request.action.value, side, volume, position)
        )

    async def deliver(self, request: OrderRequest) -> None:
        """``submit`` with retries: the order id is the same each time, so the bus drops a duplicate."""
        for attempt in range(1, self._attempts + 1):
            try:
                await self._ports.submit(request)
                return
            except Exception as exc:
                if attempt == self._attempts:
                    raise
                log.warning("order submit failed, retrying", order_id=request.order_id, error=repr(exc))
                await asyncio.sleep(self._retry_s * attempt)

    def _route(self, oid: str, slot: Slot) -> None:
        self.routes[oid] = slot
        while len(self.routes) > MAX_ROUTES:
            self.routes.popitem(last=False)
