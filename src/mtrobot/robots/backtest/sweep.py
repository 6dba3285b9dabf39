"""``--sweep name=a..b:step``: a grid of parameter values, one backtest per point, in parallel processes.

The table (``sweep.csv``, and the best runs printed) has one row per point; ``heatmap.png`` shows the
chosen metric over the first two swept parameters (the best value over any others). A point whose
parameters do not fit the robot (e.g. ``fast >= slow``) is kept in the table as refused, with the reason.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mtrobot.core.errors import ConfigError
from mtrobot.logging import configure_logging
from mtrobot.robots.backtest.engine import BacktestSpec, run_backtest
from mtrobot.robots.backtest.report import build_report
from mtrobot.robots.catalogue import Catalogue, ParamSpec, ParamsRefused, param_specs, parse_value

MAX_POINTS = 10_000
METRICS = (
    "net_profit",
    "profit_factor",
    "max_drawdown_percent",
    "recovery_factor",
    "sharpe_ratio",
    "win_rate_percent",
    "trades",
    "expectancy",
)


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[Any, ...]


def parse_axis(text: str, specs: dict[str, ParamSpec], robot: str) -> Axis:
    """``fast=5..20:5`` -> fast in (5, 10, 15, 20); ``direction=long,short`` lists values."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    spec = specs.get(name)
    if not sep or spec is None:
        known = ", ".join(specs) or "none"
        raise ConfigError(f"--sweep {text!r}: write name=a..b:step with a parameter of {robot} ({known})")
    if ".." not in rest:
        return Axis(name, tuple(_value(spec, part.strip(), text) for part in rest.split(",") if part.strip()))
    if spec.type not in ("int", "float"):
        raise ConfigError(f"--sweep {text!r}: a range a..b:step needs a number parameter")
    body, _, step_text = rest.partition(":")
    low_text, _, high_text = body.partition("..")
    low, high = _value(spec, low_text.strip(), text), _value(spec, high_text.strip(), text)
    step = _value(spec, step_text.strip(), text) if step_text.strip() else 1
    if step <= 0 or high < low:
        raise ConfigError(f"--sweep {text!r}: the step must be positive and a <= b")
    count = int((high - low) / step + 1e-9) + 1
    if count > MAX_POINTS:
        raise ConfigError(f"--sweep {text!r}: {count} values, at most {MAX_POINTS}")
    values = [low + i * step for i in range(count)]
    return Axis(name, tuple(round(v, 10) if spec.type == "float" else v for v in values))


def _value(spec: ParamSpec, text: str, whole: str) -> Any:
    try:
        return parse_value(spec, text)
    except ParamsRefused as exc:
        raise ConfigError(f"--sweep {whole!r}: {exc.errors[0][1]}") from None


def sweep_points(
    robot: str, catalogue: Catalogue, texts: list[str]
) -> tuple[list[Axis], list[dict[str, Any]]]:
    cls = catalogue.get(robot)
    if cls is None:
        raise ConfigError(
            f"ROBOT: there is no robot named {robot!r}; available: {', '.join(catalogue.names())}"
        )
    specs = {spec.name: spec for spec in param_specs(cls.params_model)}
    axes = [parse_axis(text, specs, robot) for text in texts]
    if len({a.name for a in axes}) != len(axes):
        raise ConfigError("--sweep: each parameter at most once")
    points = [
        dict(zip((a.name for a in axes), combo, strict=True))
        for combo in itertools.product(*(a.values for a in axes))
    ]
    if len(points) > MAX_POINTS:
        raise ConfigError(f"--sweep: {len(points)} combinations, at most {MAX_POINTS}")
    return axes, points


def _run_point(spec: BacktestSpec, folder: str | None) -> dict[str, Any]:
    """In a worker process: one backtest, its headline results (or why it could not run)."""
    configure_logging(level="WARNING", service="backtest-sweep")
    catalogue = Catalogue.load(Path(folder) if folder else None)
    try:
        run = asyncio.run(run_backtest(spec, catalogue))
    except ConfigError as exc:
        return {"error": str(exc).removeprefix("--set: ").replace(f"{spec.robot}: parameters: ", "")}
    results = build_report(run)["results"]
    return {name: results[name] for name in METRICS}


def run_sweep(
    base: BacktestSpec,
    points: list[dict[str, Any]],
    *,
    workers: int,
    robots_folder: Path | None,
    on_done: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Every point's row (its parameters, then the metrics or ``error``), in the grid's order."""
    rows: list[dict[str, Any] | None] = [None] * len(points)
    # forkserver: one clean interpreter imports mtrobot once and forks the workers (no inherited event
    # loop or threads, and no import per worker)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["mtrobot.robots.backtest.sweep"])
    folder = str(robots_folder) if robots_folder else None
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(points))), mp_context=context) as pool:
        futures = {
            pool.submit(_run_point, replace(base, params=base.params | point), folder): index
            for index, point in enumerate(points)
        }
        for done, future in enumerate(as_completed(futures), start=1):
            index = futures[future]
            rows[index] = points[index] | future.result()
            if on_done is not None:
                on_done(done, len(points))
    return [row for row in rows if row is not None]


def write_table(rows: list[dict[str, Any]], axes: list[Axis], path: Path) -> None:
    columns = [a.name for a in axes] + list(METRICS) + ["error"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n", restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def best_first(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    lower_is_better = metric == "max_drawdown_percent"
    ran = [r for r in rows if r.get(metric) is not None]
    return sorted(ran, key=lambda r: r[metric], reverse=not lower_is_better)


def write_heatmap(rows: list[dict[str, Any]], axes: list[Axis], metric: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    x_axis = axes[0]
    y_axis = axes[1] if len(axes) > 1 else None
    ys = y_axis.values if y_axis else ("",)
    grid: list[list[float]] = [[float("nan")] * len(x_axis.values) for _ in ys]
    for row in best_first(rows, metric)[::-1]:  # the best value of a cell is written last
        x = x_axis.values.index(row[x_axis.name])
        y = ys.index(row[y_axis.name]) if y_axis else 0
        grid[y][x] = float(row[metric])
    figure, axis = plt.subplots(figsize=(max(5.0, 0.6 * len(x_axis.values) + 2), max(2.5, 0.5 * len(ys) + 2)))
    image = axis.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    axis.set_xticks(range(len(x_axis.values)), [str(v) for v in x_axis.values], rotation=45)
    axis.set_yticks(range(len(ys)), [str(v) for v in ys])
    axis.set_xlabel(x_axis.name)
    axis.set_ylabel(y_axis.name if y_axis else "")
    for y, line in enumerate(grid):
        for x, value in enumerate(line):
            if value == value:  # not NaN
                axis.text(x, y, f"{value:.4g}", ha="center", va="center", color="white", fontsize=7)
    figure.colorbar(image, ax=axis, label=metric)
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})
    plt.close(figure)
