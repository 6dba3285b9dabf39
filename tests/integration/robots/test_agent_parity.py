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
"""

from __future__ import annotations

import asyncio
import csv
import secrets
from pathlib import Path

from nats.aio.client import Client

from mtrobot.proc import inherited_env, spawn_mtrobot, stop_process
from mtrobot.robots.backtest.bundled import bundled_path
from mtrobot.robots.backtest.engine import BacktestSpec, backtest_config, portfolio_of
from mtrobot.sim.replay import read_export

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
    config, symbol = backtest_config(spec)  # the broker `mtrobot backtest` simulates, as a server
    server = config.servers[0].name
    ticks = read_export(prices, symbol.point)
    data, account = tmp_path / "live", "parity-" + secrets.token_hex(3)
    data.mkdir()
    sim, admin = await start_simbroker(data, config, f"{server}:EURUSD={prices}", utc(ticks[0][0]))
    watch = await AccountWatch(account).listen(nc)
    agent = None
    try:
        password = "Parity-" + secrets.token_hex(6)
        login = await admin.create_account(
            server=server, password=password, investor_password="View-" + secrets.token_hex(6),
            balance=spec.balance, leverage=spec.leverage,
        )  # fmt: skip
        handoff = handoff_line(tmp_path / "platform", account, login, server, password, portfolio_of(spec))
        agent = await start_agent(data, account, nats_url, handoff)
        running = lambda: any(r.get("state") == "running" for r in watch.robots)  # noqa: E731
        try:
            await until(lambda: running() or agent.returncode is not None, 45, "the agent's robot")
        finally:
            assert running(), (
                f"{watch.snapshots} snapshots, robots {watch.robots}\n{log_tail(data / 'agent.log')}"
            )
        await drive(admin, watch, expected, ticks[0][0], ticks[-1][0])
        last_closed = (ticks[-1][0] // HOUR_MS - 1) * HOUR_MS // 1000
        done = lambda: [(r["last_bar"], r["orders_in_flight"], r["orders_sent"]) for r in watch.robots]  # noqa: E731
        await until(lambda: done() == [(last_closed, 0, len(watch.orders))], 20, f"the last bar {done()}")
        assert watch.settled()
    finally:
        if agent is not None:
            await stop_process(agent, 20)
        await stop_process(sim, 10)
        await watch.close()
    live = watch.sent()
    assert live == expected, "\n".join(f"{a}  |  {b}" for a, b in zip(live, expected, strict=False))
    # the comparison tells robots apart: the same file and robot with another parameter sends other orders
    assert live != other


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
