"""One backtest: a robot host on a simulated trade server replaying a price file on a virtual clock.

The trade server is the simulator's own (``mtrobot.sim``) with one symbol, the chosen account type's
policies (hedging + instant execution, or netting + market execution with commission and slippage) and
no market hours of its own (the file's bars say when the market traded). For every time in the file the
clock moves there, the server takes the tick (SL/TP, stop-out and swaps act on it), the host gets the
same tick, and the orders it sends are executed at once at that price. At the end every open position is
closed at the last price (comment ``end of test``), as MT5's strategy tester does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mtrobot.broker.structures import SymbolInfo, Tick, TradeDeal, TradeOrder
from mtrobot.core.errors import ConfigError
from mtrobot.core.events import RobotEvent
from mtrobot.hub.schemas import AccountRisk, Allocation, PortfolioConfig, Sizing, Timeframe
from mtrobot.robots.backtest.data import load_prices, with_spread
from mtrobot.robots.backtest.desk import Rejection, SimOrderDesk, deal_rows
from mtrobot.robots.backtest.session import SessionCalls
from mtrobot.robots.bars import TIMEFRAME_SECONDS
from mtrobot.robots.catalogue import Catalogue, ParamsRefused, validate_params
from mtrobot.robots.host import HostOptions, RobotHost
from mtrobot.robots.market import TerminalMarketData
from mtrobot.robots.outbox import SentOrder
from mtrobot.sim.broker import AdminApi, SimBroker
from mtrobot.sim.clock import VirtualClock
from mtrobot.sim.config import BrokerConfig, ServerConfig, SymbolSpec, default_config
from mtrobot.sim.replay import ReplayTick
from mtrobot.sim.server import TradeServer
from mtrobot.sim.state import Account

ACCOUNT = "backtest"
_PASSWORD, _INVESTOR = "backtest-pass", "backtest-view"
AccountKind = Literal["hedging", "netting"]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BacktestSpec:
    robot: str
    symbol: str
    timeframe: Timeframe = "H1"
    data: Path | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    params: dict[str, Any] = field(default_factory=dict)
    balance: float = 10_000.0
    leverage: int = 100
    account: AccountKind = "hedging"
    sizing: Sizing = field(default_factory=lambda: Sizing(lots=0.1))
    max_open_positions: int = 10
    risk: AccountRisk = field(
        default_factory=lambda: AccountRisk(max_lots_per_order=100.0, min_margin_level_percent=100.0)
    )
    spread_points: int | None = None
    commission_per_lot: float | None = None
    seed: int = 42


@dataclass
class BacktestRun:
    spec: BacktestSpec
    params: dict[str, Any]
    source: str
    info: SymbolInfo
    server: str
    currency: str
    bars: int
    ticks: int
    first_bid: float
    last_bid: float
    commission_per_lot: float
    times: list[int] = field(default_factory=list)
    balances: list[float] = field(default_factory=list)
    equities: list[float] = field(default_factory=list)
    exposed_bars: int = 0
    deals: list[TradeDeal] = field(default_factory=list)
    orders: dict[int, TradeOrder] = field(default_factory=dict)
    sent: list[SentOrder] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    events: list[RobotEvent] = field(default_factory=list)


def backtest_config(spec: BacktestSpec) -> tuple[BrokerConfig, SymbolSpec]:
    """The simulated broker of a backtest: one server of the chosen kind, one symbol, no hours."""
    base = default_config(spec.seed)
    server = base.servers[0] if spec.account == "hedging" else base.servers[1]
    symbol = server.symbol(spec.symbol)
    if symbol is None:
        known = ", ".join(s.name for s in server.symbols)
        raise ConfigError(f"--symbol: the simulator has no symbol {spec.symbol!r}; it has {known}")
    changes: dict[str, Any] = {"weekend_trading": True}
    if spec.commission_per_lot is not None:
        changes["commission_per_lot"] = spec.commission_per_lot
    symbol = symbol.model_copy(update=changes)
    one: ServerConfig = server.model_copy(
        update={
            "symbols": (symbol,),
            "timezone": "UTC",
            "maintenance_minutes": 0,
            "inactivity_timeout_s": 1e9,
        }
    )
    return BrokerConfig(seed=spec.seed, servers=(one,), history_minutes=0), symbol


def _check_robot(spec: BacktestSpec, catalogue: Catalogue) -> dict[str, Any]:
    robot = catalogue.get(spec.robot)
    if robot is None:
        raise ConfigError(
            f"ROBOT: there is no robot named {spec.robot!r}; available: {', '.join(catalogue.names())}"
        )
    try:
        return validate_params(robot, spec.params).model_dump()
    except ParamsRefused as exc:
        raise ConfigError(f"--set: {exc}") from None


@dataclass
class SimWorld:
    """A simulated trade server replaying ticks on a virtual clock, with one logged-in account: what a
    backtest runs on (and what tests of the robot host drive tick by tick)."""

    broker: SimBroker
    server: TradeServer
    clock: VirtualClock
    account: Account
    calls: SessionCalls
    desk: SimOrderDesk
    info: SymbolInfo
    symbol: SymbolSpec
    ticks: list[ReplayTick]
    source: str
    counts: dict[int, int] = field(default_factory=dict)

    @property
    def times(self) -> list[int]:
        return sorted(self.counts)

    def market_time(self) -> datetime:
        return datetime.fromtimestamp(self.server.now_ms() / 1000, UTC)

    def step(self, moment: int) -> list[Tick]:
        """Move the clock to ``moment`` (server ms); the server takes its ticks and returns them."""
        self.clock.set_ms(moment)
        self.server.sync()
        ticks = self.server.feeds[self.symbol.name].ticks
        return [ticks[-j] for j in range(min(self.counts.get(moment, 0), len(ticks)), 0, -1)]

    def close(self) -> None:
        self.calls.session.close()


async def open_world(spec: BacktestSpec, ticks: list[ReplayTick] | None = None) -> SimWorld:
    """The simulator of ``spec`` replaying ``ticks`` (default: ``spec``'s data file or the bundled one)."""
    config, symbol = backtest_config(spec)
    source = "ticks given"
    if ticks is None:
        prices = load_prices(
            spec.symbol,
            spec.timeframe,
            symbol.point,
            path=spec.data,
            date_from=spec.date_from,
            date_to=spec.date_to,
        )
        ticks, source = prices.ticks, prices.source
    ticks = with_spread(ticks, symbol.point, spec.spread_points, symbol.spread_points)
    clock = VirtualClock(ticks[0][0])
    broker = SimBroker(config, clock)
    server_name = config.servers[0].name
    broker.load_replay(server_name, spec.symbol, ticks)
    login = AdminApi(broker).create_account(
        server=server_name,
        password=_PASSWORD,
        investor_password=_INVESTOR,
        balance=spec.balance,
        leverage=spec.leverage,
    )
    server = broker.server(server_name)
    calls = SessionCalls(broker.new_session())
    await calls.call("initialize", login=login, password=_PASSWORD, server=server_name)
    server.sync()
    info = (await calls.call("symbol_info", spec.symbol)).value
    world = SimWorld(
        broker=broker,
        server=server,
        clock=clock,
        account=server.accounts[login],
        calls=calls,
        desk=SimOrderDesk(calls, ACCOUNT, info, server.now_ms),
        info=info,
        symbol=symbol,
        ticks=ticks,
        source=source,
    )
    for t, _, _ in ticks:
        world.counts[t] = world.counts.get(t, 0) + 1
    return world


def portfolio_of(spec: BacktestSpec) -> PortfolioConfig:
    allocation = Allocation(
        robot=spec.robot,
        symbol=spec.symbol,
        timeframe=spec.timeframe,
        params=spec.params,
        sizing=spec.sizing,
        max_open_positions=spec.max_open_positions,
    )
    return PortfolioConfig(active=True, robots=[allocation], risk=spec.risk)


async def run_backtest(
    spec: BacktestSpec, catalogue: Catalogue, progress: Progress | None = None
) -> BacktestRun:
    params = _check_robot(spec, catalogue)
    world = await open_world(spec)
    server, account, desk = world.server, world.account, world.desk
    host = RobotHost(
        ACCOUNT,
        TerminalMarketData(world.calls),
        desk.submit,
        catalogue,
        portfolio_of(spec),
        options=HostOptions(concurrent=False, poll_interval_s=None, keep_sent=None),
        clock=world.market_time,
    )
    await host.start()
    run = BacktestRun(
        spec=spec,
        params=params,
        source=world.source,
        info=world.info,
        server=server.name,
        currency=account.currency,
        bars=0,
        ticks=len(world.ticks),
        first_bid=world.ticks[0][1],
        last_bid=world.ticks[-1][1],
        commission_per_lot=world.symbol.commission_per_lot,
    )
    bar_seconds = TIMEFRAME_SECONDS[spec.timeframe]
    times = world.times
    last_bar, bar_exposed = -1, False
    step = max(1, len(times) // 200)
    for index, moment in enumerate(times):
        await host.feed(spec.symbol, world.step(moment))
        await desk.deliver(host)
        bar = moment // 1000 // bar_seconds
        if bar != last_bar:
            run.bars += 1
            run.exposed_bars += bar_exposed
            last_bar, bar_exposed = bar, False
        bar_exposed = bar_exposed or bool(account.positions)
        run.times.append(moment)
        run.balances.append(account.balance)
        run.equities.append(server.floating(account)[1])
        if progress is not None and index % step == 0:
            progress(index, len(times))
    run.exposed_bars += bar_exposed
    await host.stop()
    await desk.close_everything("end of test")
    run.times.append(times[-1])
    run.balances.append(account.balance)
    run.equities.append(server.floating(account)[1])
    if progress is not None:
        progress(len(times), len(times))
    run.deals = deal_rows((await world.calls.call("history_deals_get", 0, 2**31 - 1)).value)
    orders = (await world.calls.call("history_orders_get", 0, 2**31 - 1)).value or ()
    run.orders = {o.ticket: o for o in orders}
    run.sent, run.rejections, run.events = list(host.sent), desk.rejections, list(host.events)
    world.close()
    return run
