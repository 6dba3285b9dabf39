"""A robot host on the real simulator (in process, virtual clock), driven tick by tick by the test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from mtrobot.core.events import RobotEvent
from mtrobot.core.orders import OrderRequest
from mtrobot.hub.schemas import AccountRisk, Allocation, PortfolioConfig
from mtrobot.robots.api import Bar, Context, Params, Robot, Side
from mtrobot.robots.backtest.engine import ACCOUNT, BacktestSpec, SimWorld, open_world
from mtrobot.robots.catalogue import Catalogue
from mtrobot.robots.host import HostOptions, RobotHost
from mtrobot.robots.market import TerminalMarketData

START = datetime(2024, 1, 2, tzinfo=UTC)  # a Tuesday
HOUR_MS = 3_600_000


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Wait for ``condition`` (polled), at most ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def hourly_ticks(
    bids: Sequence[float], spread: float = 0.00001, start: datetime = START
) -> list[tuple[int, float, float]]:
    base = int(start.timestamp() * 1000)
    return [(base + i * HOUR_MS, bid, round(bid + spread, 5)) for i, bid in enumerate(bids)]


class CountParams(Params):
    count: int = Field(default=1, ge=1, le=100, description="positions to open, one per bar")


class Opener(Robot[CountParams]):
    """Opens a long position on each closed bar until it has asked for ``count``."""

    name = "opener"
    description = "Test robot: buys once per bar, count times."
    params_model = CountParams

    def __init__(self, params: CountParams) -> None:
        super().__init__(params)
        self.asked = 0

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if self.asked < self.params.count:
            self.asked += 1
            ctx.buy()


class Flipper(Robot[Params]):
    """Trades on every bar: closes what it has and opens the other way."""

    name = "flipper"
    description = "Test robot: reverses on every bar."

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        side = Side.SELL if ctx.positions_of(Side.BUY) else Side.BUY
        ctx.close_all()
        ctx.open(side)


TEST_ROBOTS: list[type[Robot[Any]]] = [Opener, Flipper]


def catalogue(*extra: type[Robot[Any]]) -> Catalogue:
    return Catalogue((robot, "test") for robot in [*TEST_ROBOTS, *extra])


def allocation(robot: str, **fields: Any) -> Allocation:
    return Allocation.model_validate({"robot": robot, "symbol": "EURUSD", "timeframe": "H1"} | fields)


@dataclass
class HostRig:
    world: SimWorld
    host: RobotHost
    submitted: list[OrderRequest] = field(default_factory=list)
    events: list[RobotEvent] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)

    async def run(self, count: int | None = None) -> None:
        """Replay the next ``count`` times of the data (all by default), settling after each."""
        for moment in self.pending[:count]:
            self.pending.remove(moment)
            await self.host.feed("EURUSD", self.world.step(moment))
            await self.settle()

    async def settle(self) -> None:
        for _ in range(3):  # events -> orders -> fills/updates -> the robots' reactions
            await self.host.drain()
            await self.world.desk.deliver(self.host)
        await self.host.drain()

    def positions(self) -> int:
        return len(self.world.account.positions)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    async def close(self) -> None:
        await self.host.stop()
        self.world.close()


async def host_rig(
    bids: Iterable[float],
    robots: list[Allocation],
    *,
    risk: AccountRisk | None = None,
    options: HostOptions | None = None,
    cat: Catalogue | None = None,
    balance: float = 10_000.0,
    leverage: int = 100,
    account: str = "hedging",
    observer: Callable[[RobotEvent], None] | None = None,
) -> HostRig:
    spec = BacktestSpec(robot="opener", symbol="EURUSD", balance=balance, leverage=leverage, account=account)  # type: ignore[arg-type]
    world = await open_world(spec, hourly_ticks(list(bids)))
    rig = HostRig(world, None)  # type: ignore[arg-type]

    async def submit(request: OrderRequest) -> None:
        rig.submitted.append(request)
        await world.desk.submit(request)

    def on_event(event: RobotEvent) -> None:
        rig.events.append(event)
        if observer is not None:
            observer(event)

    portfolio = PortfolioConfig(active=True, robots=robots, risk=risk or AccountRisk())
    rig.host = RobotHost(
        ACCOUNT,
        TerminalMarketData(world.calls),
        submit,
        cat or catalogue(),
        portfolio,
        on_event=on_event,
        options=options or HostOptions(poll_interval_s=None, hook_timeout_s=2.0),
        clock=world.market_time,
    )
    rig.pending = world.times
    await rig.host.start()
    await asyncio.sleep(0)
    return rig
