"""Backtests on the bundled data: reproducible to the byte, honest metrics, the files and the sweep."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result

from mtrobot.robots.backtest.bundled import bundled_path, generate_eurusd_h1
from mtrobot.robots.backtest.engine import BacktestSpec, run_backtest
from mtrobot.robots.backtest.output import report_json
from mtrobot.robots.backtest.report import build_report
from mtrobot.robots.catalogue import Catalogue
from mtrobot.robots.slot import decision_ms

JAN = datetime(2024, 1, 1, tzinfo=UTC)
FEB = datetime(2024, 2, 1, tzinfo=UTC)
BUILTINS = ["ma_cross", "rsi_reversion", "breakout_atr", "grid_averaging"]
Cli = Callable[..., Result]


def test_the_bundled_data_is_exactly_what_its_generator_writes() -> None:
    path = bundled_path("EURUSD", "H1")
    assert path is not None
    assert path.read_text(encoding="utf-8") == generate_eurusd_h1()


@pytest.mark.parametrize("robot", BUILTINS)
async def test_each_builtin_robot_gives_a_byte_identical_report_twice(robot: str) -> None:
    spec = BacktestSpec(robot=robot, symbol="EURUSD", date_from=JAN, date_to=FEB)
    first = report_json(build_report(await run_backtest(spec, Catalogue())))
    second = report_json(build_report(await run_backtest(spec, Catalogue())))
    assert first == second
    results = json.loads(first)["results"]
    assert results["trades"] > 5, "the robot should trade on a month of H1 bars"
    # every entry is closed by the end of the test, so the trade results add up to the net profit
    assert results["gross_profit"] + results["gross_loss"] == pytest.approx(results["net_profit"], abs=0.02)


async def test_the_report_counts_what_the_deals_say() -> None:
    spec = BacktestSpec(robot="ma_cross", symbol="EURUSD", date_from=JAN, date_to=FEB, account="netting")
    run = await run_backtest(spec, Catalogue())
    report = build_report(run)
    results = report["results"]
    closing = [d for d in run.deals if d.type in (0, 1) and d.entry != 0]
    assert results["trades"] == len(closing)
    assert results["winning_trades"] + results["losing_trades"] <= results["trades"]
    assert results["commission"] < 0, "Northwind-Live charges 3.5 per lot and side"
    assert results["net_profit"] == pytest.approx(run.balances[-1] - 10_000.0, abs=0.005)
    assert report["orders"]["sent"] == len(run.sent) and report["orders"]["rejected_by_broker"] == 0
    assert 0 < results["exposure_percent"] <= 100
    assert results["max_drawdown_money"] > 0 and results["max_drawdown_percent"] > 0
    assert run.deals[-1].comment == "end of test"


def test_the_backtest_command_writes_the_report_the_deals_the_orders_and_the_equity_curve(
    tmp_path: Path, cli: Cli
) -> None:
    out = tmp_path / "out"
    args = ["backtest", "ma_cross", "--symbol", "EURUSD", "--timeframe", "H1", "--from", "2024-01-01"]
    args += ["--to", "2024-02-01", "--set", "fast=8", "--set", "slow=21", "--out", str(out)]
    result = cli(*args, "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 0, result.output
    assert "report.json, deals.csv, orders.csv and equity.png in" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["parameters"] == {"fast": 8, "slow": 21}
    assert report["data"]["source"] == "bundled:EURUSD_H1.csv"
    with (out / "deals.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["time", "deal", "order", "type", "direction", "volume", "price", "sl", "tp",
                             "commission", "swap", "profit", "balance", "comment"]  # fmt: skip
    assert rows[0]["type"] == "balance" and rows[-1]["comment"] == "end of test"
    assert float(rows[-1]["balance"]) == pytest.approx(report["results"]["final_balance"])
    with (out / "orders.csv").open() as handle:
        orders = list(csv.DictReader(handle))
    assert list(orders[0]) == ["time", "time_msc", "order_id", "robot", "action", "side", "volume",
                               "position"]  # fmt: skip
    assert len(orders) == report["orders"]["sent"] > 0
    assert {o["action"] for o in orders} == {"open", "close"}
    assert all(decision_ms(o["order_id"]) == int(o["time_msc"]) for o in orders)
    assert (out / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["no_such_robot"], "there is no robot named 'no_such_robot'; available: breakout_atr"),
        (["ma_cross", "--set", "fast=ten"], "--set: parameters: fast: 'ten' is not a whole number"),
        (["ma_cross", "--set", "fast=50"], "fast (50) must be smaller than slow (30)"),
        (["ma_cross", "--symbol", "NOPE"], "--symbol: the simulator has no symbol 'NOPE'"),
        (["ma_cross", "--timeframe", "M15"], "M15 bars cannot be built from this file's 60-minute bars"),
        (["ma_cross", "--from", "2030-01-01"], "--from/--to: no prices in the chosen period"),
        (["ma_cross", "--from", "yesterday"], "--from: 'yesterday' is not a date"),
        (["ma_cross", "--sweep", "fast=1..x"], "--sweep 'fast=1..x': 'x' is not a whole number"),
    ],
)
def test_a_bad_backtest_request_gets_one_clear_line(
    tmp_path: Path, cli: Cli, args: list[str], says: str
) -> None:
    result = cli("backtest", *args, "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert says in result.output.replace("\n", " ")


def test_a_sweep_runs_the_grid_in_processes_and_writes_a_table_and_a_heatmap(
    tmp_path: Path, cli: Cli
) -> None:
    out = tmp_path / "sweep"
    args = ["backtest", "ma_cross", "--from", "2024-01-01", "--to", "2024-01-10", "--out", str(out)]
    args += ["--sweep", "fast=10..20:10", "--sweep", "slow=20", "--workers", "2"]
    result = cli(*args, "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 0, result.output
    with (out / "sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["fast"], r["slow"]) for r in rows] == [("10", "20"), ("20", "20")]
    assert rows[0]["net_profit"] and not rows[0]["error"]
    assert "must be smaller than slow" in rows[1]["error"]
    assert (out / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
