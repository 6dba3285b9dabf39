"""``backtest``: a backtest of N H1 bars (default 5,000) of the bundled data, beside the simulator alone
replaying the same ticks (the floor: what the robot host, the robot and the report add is the rest).
Wall time and this process's CPU time are both reported: on a busy machine they differ."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from mtrobot.robots.backtest.bundled import bundled_path
from mtrobot.robots.backtest.engine import BacktestSpec, open_world, run_backtest
from mtrobot.robots.backtest.report import build_report
from mtrobot.robots.catalogue import Catalogue


def _first_bars(count: int, folder: Path) -> Path:
    source = bundled_path("EURUSD", "H1")
    assert source is not None
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    path = folder / f"EURUSD_H1_{count}.csv"
    path.write_text("".join(lines[: count + 1]), encoding="utf-8")
    return path


async def _floor_s(spec: BacktestSpec) -> float:
    world = await open_world(spec)
    started = time.perf_counter()
    for moment in world.times:
        world.step(moment)
        world.server.floating(world.account)
    elapsed = time.perf_counter() - started
    world.close()
    return elapsed


async def run_backtest_benchmark(
    bars: int = 5_000, runs: int = 3, robot: str = "ma_cross"
) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="mtrobot-bench-") as folder:
        spec = BacktestSpec(robot=robot, symbol="EURUSD", data=_first_bars(bars, Path(folder)))
        catalogue = Catalogue()
        floors, totals, cpu, report = [], [], [], None
        for _ in range(runs):
            floors.append(await _floor_s(spec))
            started, cpu_started = time.perf_counter(), time.process_time()
            run = await run_backtest(spec, catalogue)
            report = build_report(run)
            totals.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
    assert report is not None
    median, floor = statistics.median(totals), statistics.median(floors)
    return [
        {
            "benchmark": "backtest",
            "robot": robot,
            "bars": report["data"]["bars"],
            "ticks": report["data"]["ticks"],
            "runs": runs,
            "median_s": round(median, 3),
            "runs_s": [round(t, 3) for t in totals],
            "median_cpu_s": round(statistics.median(cpu), 3),
            "bars_per_s": round(report["data"]["bars"] / median),
            "floor_simulator_only_s": round(floor, 3),
            "ratio_to_floor": round(median / floor, 2) if floor else None,
            "trades": report["results"]["trades"],
            "net_profit": report["results"]["net_profit"],
        }
    ]
