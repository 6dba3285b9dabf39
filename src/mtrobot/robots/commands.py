"""``mtrobot robots`` and ``mtrobot backtest``: the catalogue and backtests from the command line."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from mtrobot.core.errors import ConfigError
from mtrobot.hub.schemas import Sizing
from mtrobot.robots.backtest.engine import AccountKind, BacktestSpec, run_backtest
from mtrobot.robots.backtest.output import write_outputs
from mtrobot.robots.backtest.report import build_report
from mtrobot.robots.backtest.sweep import (
    METRICS,
    best_first,
    run_sweep,
    sweep_points,
    write_heatmap,
    write_table,
)
from mtrobot.robots.catalogue import (
    Catalogue,
    ParamSpec,
    ParamsRefused,
    RobotInfo,
    parse_assignments,
    robots_folder,
)
from mtrobot.settings import Settings


def load_catalogue(settings: Settings) -> Catalogue:
    return Catalogue.load(robots_folder(settings.data_dir))


def describe_param(spec: ParamSpec) -> str:
    if spec.choices:
        allowed = "|".join(str(c) for c in spec.choices)
    elif spec.minimum is not None or spec.maximum is not None:
        low = "" if spec.minimum is None else (">" if spec.exclusive_minimum else "") + f"{spec.minimum:g}"
        high = "" if spec.maximum is None else ("<" if spec.exclusive_maximum else "") + f"{spec.maximum:g}"
        allowed = f"{low}..{high}"
    else:
        allowed = spec.type
    return f"{spec.name}={spec.default} ({allowed})"


def info_json(info: RobotInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "description": info.description,
        "details": info.details,
        "source": info.source,
        "parameters": [asdict(p) | {"choices": list(p.choices)} for p in info.parameters],
    }


def print_catalogue(catalogue: Catalogue, *, as_json: bool, console: Console) -> None:
    if as_json:
        console.print_json(json.dumps([info_json(i) for i in catalogue.infos()]))
        return
    table = Table(title="Robots", show_lines=True)
    table.add_column("name", style="bold")
    table.add_column("what it does")
    table.add_column("parameters (default, range)")
    for info in catalogue.infos():
        source = "" if info.source == "builtin" else f"\n[dim]{info.source}[/dim]"
        table.add_row(
            info.name + source, info.description, "\n".join(describe_param(p) for p in info.parameters)
        )
    console.print(table)
    for problem in catalogue.problems:
        console.print(f"[red]not loaded:[/red] {problem}")


def parse_date(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    for layout in ("%Y-%m-%d", "%Y.%m.%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ConfigError(f"{option}: {text!r} is not a date like 2024-03-01 or 2024-03-01T12:00 (server time)")


def build_spec(
    catalogue: Catalogue,
    robot: str,
    *,
    symbol: str,
    timeframe: str,
    data: Path | None,
    date_from: str | None,
    date_to: str | None,
    assignments: list[str],
    balance: float,
    account: str,
    lots: float | None,
    risk_percent: float | None,
    spread: int | None,
    commission: float | None,
    leverage: int,
) -> BacktestSpec:
    cls = catalogue.get(robot)
    if cls is None:
        raise ConfigError(
            f"ROBOT: there is no robot named {robot!r}; available: {', '.join(catalogue.names())}"
        )
    try:
        params = parse_assignments(cls, assignments)
    except ParamsRefused as exc:
        raise ConfigError(f"--set: {exc}") from None
    if lots is not None and risk_percent is not None:
        raise ConfigError("--lots and --risk-percent: choose one way to size orders")
    sizing = (
        Sizing(mode="equity_percent", equity_percent=risk_percent)
        if risk_percent
        else Sizing(lots=lots or 0.1)
    )
    if account not in ("hedging", "netting"):
        raise ConfigError("--account: hedging or netting")
    kind: AccountKind = "hedging" if account == "hedging" else "netting"
    if timeframe not in ("M1", "M5", "M15", "M30", "H1", "H4", "D1"):
        raise ConfigError(f"--timeframe: {timeframe!r} is not one of M1, M5, M15, M30, H1, H4, D1")
    return BacktestSpec(
        robot=robot,
        symbol=symbol,
        timeframe=timeframe,  # type: ignore[arg-type]
        data=data,
        date_from=parse_date(date_from, "--from"),
        date_to=parse_date(date_to, "--to"),
        params=params,
        balance=balance,
        leverage=leverage,
        account=kind,
        sizing=sizing,
        spread_points=spread,
        commission_per_lot=commission,
    )


def default_out(settings: Settings, spec: BacktestSpec, sweep: bool) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    kind = "sweep" if sweep else "backtest"
    return settings.data_dir / "backtests" / f"{spec.robot}-{spec.symbol}-{spec.timeframe}-{kind}-{stamp}"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def backtest_once(spec: BacktestSpec, catalogue: Catalogue, out: Path, console: Console) -> dict[str, Any]:
    started = time.perf_counter()
    with _progress(console) as bar:
        task = bar.add_task(f"{spec.robot} {spec.symbol} {spec.timeframe}", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        run = asyncio.run(run_backtest(spec, catalogue, advance))
    elapsed = time.perf_counter() - started
    report = build_report(run)
    write_outputs(run, report, out)
    results = report["results"]
    console.print(
        f"{spec.robot} on {spec.symbol} {spec.timeframe}: {report['data']['bars']} bars in {elapsed:.2f} s; "
        f"net profit {results['net_profit']:,.2f} {report['account']['currency']}, "
        f"{results['trades']} trades, max drawdown {results['max_drawdown_percent']}%, "
        f"profit factor {results['profit_factor']}"
    )
    console.print(f"report.json, deals.csv, orders.csv and equity.png in {out}")
    return report


def backtest_sweep(
    spec: BacktestSpec,
    catalogue: Catalogue,
    sweeps: list[str],
    out: Path,
    console: Console,
    *,
    workers: int | None,
    metric: str,
    robots_dir: Path,
) -> list[dict[str, Any]]:
    if metric not in METRICS:
        raise ConfigError(f"--metric: one of {', '.join(METRICS)}")
    axes, points = sweep_points(spec.robot, catalogue, sweeps)
    fixed = [a.name for a in axes if a.name in spec.params]
    if fixed:
        raise ConfigError(f"--set and --sweep both give {', '.join(fixed)}: choose one")
    count = workers or max(1, min(len(points), os.cpu_count() or 1))
    started = time.perf_counter()
    with _progress(console) as bar:
        task = bar.add_task(f"sweep {len(points)} runs on {count} processes", total=len(points))
        rows = run_sweep(
            spec,
            points,
            workers=count,
            robots_folder=robots_dir,
            on_done=lambda done, total: bar.update(task, completed=done),
        )
    out.mkdir(parents=True, exist_ok=True)
    write_table(rows, axes, out / "sweep.csv")
    title = f"{spec.robot} {spec.symbol} {spec.timeframe}: {metric}"
    write_heatmap(rows, axes, metric, out / "heatmap.png", title)
    table = Table(title=f"{len(rows)} runs in {time.perf_counter() - started:.1f} s, best {metric} first")
    for name in [a.name for a in axes] + list(METRICS):
        table.add_column(name, justify="right")
    for row in best_first(rows, metric)[:20]:
        table.add_row(
            *("" if row.get(c) is None else str(row[c]) for c in [a.name for a in axes] + list(METRICS))
        )
    console.print(table)
    refused = [r for r in rows if "error" in r]
    if refused:
        console.print(f"{len(refused)} combinations refused, e.g.: {refused[0]['error']}")
    console.print(f"sweep.csv and heatmap.png in {out}")
    return rows
