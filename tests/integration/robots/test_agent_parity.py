"""Parity in a real agent: the same robot over the same price file sends the same orders (time, side,
volume) from a real ``mtrobot agent`` process, trading on ``mtrobot simbroker`` replaying that file, as
``mtrobot backtest`` does over it, order for order.

Every part is a real process or a real server: nats-server from the wheel (the session's), the simulator
(``--replay``, its virtual clock held still with ``--speed 0``), and the agent, started the way the
supervisor starts one (``mtrobot agent --account ID``, the hand-off line on stdin, its portfolio in the
hand-off). The agent reads the prices through its own terminal session, like any live agent; the test
only moves the simulator's clock. It moves it to each moment at which the backtest sent orders and holds
it there until the agent has sent as many and the broker has settled them (so the fills are at the
backtest's prices), then to the end of the file, and waits for the agent to report the last closed bar.
An order the agent sends at another time, of another side or volume, or one more or one fewer, fails the
comparison.

The second test runs the same, with two operator robots from ``DATA_DIR/robots`` beside ``ma_cross``: one
raises, one sleeps past the agent's 5 s hook timeout. Both are paused with their reason, ``ma_cross``
still sends exactly the backtest's orders, and the agent's heartbeat (every 5 s) never misses a beat.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import itertools
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from mtrobot.core.agent import HEARTBEAT_INTERVAL_S
from mtrobot.hub.schemas import Allocation, PortfolioConfig
from mtrobot.proc import inherited_env, spawn_mtrobot, stop_process
from mtrobot.robots.backtest.bundled import bundled_path
from mtrobot.robots.backtest.engine import BacktestSpec, backtest_config, portfolio_of
from mtrobot.sim.replay import ReplayTick, read_export

from .agentrig import AccountWatch, Order, handoff_line, log_tail, start_agent, start_simbroker, until, utc

HOUR_MS = 3_600_000
ROBOT, PARAMS = "ma_cross", {"fast": 3, "slow": 8}
FIRST_DAY, END_DAY = "2024.01.02", "2024.01.05"  # Tuesday to Thursday: 72 H1 bars


def price_file(path: Path) -> Path:
    """An MT5 "Export bars" file: three days of the bundled EURUSD H1 bars."""
    source = bundled_path("EURUSD", "H1")
    assert source is not None
    header, *rows = source.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(header + "".join(r for r in rows if FIRST_DAY <= r[:10] < END_DAY), encoding="utf-8")
    return path


async def backtest_orders(data: Path, out: Path, **params: int) -> list[Order]:
    """``mtrobot backtest ROBOT --data FILE --set ...`` as a trader runs it; its ``orders.csv``."""
    args = ("backtest", ROBOT, "--data", str(data), "--out", str(out), "--data-dir", str(out / "dd"))
    for name, value in params.items():
        args += ("--set", f"{name}={value}")
    process = await spawn_mtrobot(args, env=inherited_env(), log_path=out.with_suffix(".log"))
    assert await asyncio.wait_for(process.wait(), 60) == 0, log_tail(out.with_suffix(".log"))
    with (out / "orders.csv").open(newline="") as handle:
        return [(int(r["time_msc"]), r["action"], r["side"], r["volume"]) for r in csv.DictReader(handle)]


@contextlib.asynccontextmanager
async def live_agent(
    tmp_path: Path, nats_url: str, nc: Client, spec: BacktestSpec, portfolio: PortfolioConfig,
    robot_files: dict[str, str] | None = None,
) -> AsyncIterator[tuple[Any, AccountWatch, list[ReplayTick]]]:  # fmt: skip
    """The simulator replaying ``spec.data`` and a real agent of one new account trading ``portfolio``,
    its robots running; yields the simulator's admin channel, the account's bus traffic and the ticks."""
    assert spec.data is not None
    config, symbol = backtest_config(spec)  # the broker `mtrobot backtest` simulates, as a server
    server = config.servers[0].name
    ticks = read_export(spec.data, symbol.point)
    data, account = tmp_path / "live", "parity-" + secrets.token_hex(3)
    (data / "robots").mkdir(parents=True)
    for name, text in (robot_files or {}).items():
        (data / "robots" / name).write_text(text)
    sim, admin = await start_simbroker(data, config, f"{server}:EURUSD={spec.data}", utc(ticks[0][0]))
    watch = await AccountWatch(account).listen(nc)
    agent = None
    try:
        password = "Parity-" + secrets.token_hex(6)
        login = await admin.create_account(
            server=server, password=password, investor_password="View-" + secrets.token_hex(6),
            balance=spec.balance, leverage=spec.leverage,
        )  # fmt: skip
        handoff = handoff_line(tmp_path / "platform", account, login, server, password, portfolio)
        agent = await start_agent(data, account, nats_url, handoff)
        wanted = len(portfolio.robots)
        running = lambda: sum(r.get("state") == "running" for r in watch.robots) == wanted  # noqa: E731
        try:
            await until(lambda: running() or agent.returncode is not None, 45, "the agent's robots")
        finally:
            assert running(), (
                f"{watch.snapshots} snapshots, robots {watch.robots}\n{log_tail(data / 'agent.log')}"
            )
        yield admin, watch, ticks
    finally:
        if agent is not None:
            await stop_process(agent, 20)
        await stop_process(sim, 10)
        await watch.close()


async def test_a_real_agent_on_a_replaying_simulator_sends_the_backtests_orders_order_for_order(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    prices = price_file(tmp_path / "EURUSD_H1.csv")
    expected, other = await asyncio.gather(
        backtest_orders(prices, tmp_path / "backtest", **PARAMS),
        backtest_orders(prices, tmp_path / "other", fast=3, slow=9),
    )
    assert len(expected) >= 6, "the file should hold several crosses"
    spec = BacktestSpec(robot=ROBOT, symbol="EURUSD", data=prices, params=PARAMS)
    async with live_agent(tmp_path, nats_url, nc, spec, portfolio_of(spec)) as (admin, watch, ticks):
        await drive(admin, watch, expected, ticks[0][0], ticks[-1][0])
        last_closed = (ticks[-1][0] // HOUR_MS - 1) * HOUR_MS // 1000
        done = lambda: [(r["last_bar"], r["orders_in_flight"], r["orders_sent"]) for r in watch.robots]  # noqa: E731
        await until(lambda: done() == [(last_closed, 0, len(watch.orders))], 20, f"the last bar {done()}")
        assert watch.settled()
    live = watch.sent()
    assert live == expected, "\n".join(f"{a}  |  {b}" for a, b in zip(live, expected, strict=False))
    # the comparison tells robots apart: the same file and robot with another parameter sends other orders
    assert live != other


FAILING_ROBOTS = """
import time
from mtrobot.robots.api import Params, Robot

class Hanger(Robot[Params]):
    name = "hanger"
    description = "Test robot: its first on_bar runs past the agent's hook timeout."

    def on_bar(self, ctx, bar):
        time.sleep(8)

class Raiser(Robot[Params]):
    name = "raiser"
    description = "Test robot: raises on every bar."

    def on_bar(self, ctx, bar):
        raise ZeroDivisionError("division by zero")
"""


async def test_in_a_real_agent_a_raising_and_a_hanging_robot_pause_alone_and_the_heartbeat_keeps_time(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    prices = price_file(tmp_path / "EURUSD_H1.csv")
    expected = await backtest_orders(prices, tmp_path / "backtest", **PARAMS)
    spec = BacktestSpec(robot=ROBOT, symbol="EURUSD", data=prices, params=PARAMS)
    portfolio = portfolio_of(spec)
    neighbours = [Allocation(robot=name, symbol="EURUSD", timeframe="H1") for name in ("hanger", "raiser")]
    portfolio = portfolio.model_copy(update={"robots": [*portfolio.robots, *neighbours]})
    files = {"failing.py": FAILING_ROBOTS}
    async with live_agent(tmp_path, nats_url, nc, spec, portfolio, files) as (admin, watch, ticks):
        await drive(admin, watch, expected, ticks[0][0], ticks[-1][0])
        state = lambda: {r["robot"]: (r["state"], r["reason"]) for r in watch.robots}  # noqa: E731
        paused = lambda: state()["hanger"][0] == state()["raiser"][0] == "paused"  # noqa: E731
        await until(paused, 20, f"both failing robots paused: {state()}")
        beats = len(watch.beats)
        await until(lambda: len(watch.beats) > beats, 2 * HEARTBEAT_INTERVAL_S, "a heartbeat after")
    assert "did not return within 5 s" in state()["hanger"][1]
    assert "raised ZeroDivisionError: division by zero" in state()["raiser"][1]
    assert state()["ma_cross"][0] == "running"
    mine = [o for o, r in zip(watch.sent(), watch.orders, strict=True) if r.get("robot") == ROBOT]
    assert mine == expected, "its neighbours' failures changed nothing of ma_cross's orders"
    # beats from the agent's start until after the hang: none missed (one is due every 5 s)
    gaps = [b - a for a, b in itertools.pairwise(watch.beats)]
    assert len(gaps) >= 2 and max(gaps) < HEARTBEAT_INTERVAL_S * 1.5, gaps


async def drive(admin: object, watch: AccountWatch, expected: list[Order], start: int, end: int) -> None:
    """Move the simulator's clock to each moment the backtest sent orders at, holding it there until the
    agent sent as many orders by then and the broker settled them; then to the last tick. A missing order
    stops the drive (the comparison then shows where the two part)."""
    now = start
    for moment in sorted({t for t, *_ in expected if t is not None}):
        if moment > now:
            now = await admin.advance_clock(seconds=(moment - now) / 1000)  # type: ignore[attr-defined]
        count = sum(1 for t, *_ in expected if t is not None and t <= moment)
        try:
            await until(lambda: watch.decided_by(moment) >= count and watch.settled(), 15, "orders")  # noqa: B023
        except AssertionError:
            break
    if end > now:
        await admin.advance_clock(seconds=(end - now) / 1000)  # type: ignore[attr-defined]
