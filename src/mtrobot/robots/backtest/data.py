"""The prices a backtest replays: an MT5 export file (bars or ticks) or the bundled data.

Files are read by the simulator's own reader (:func:`mtrobot.sim.replay.read_export`), which turns each
bar into four ticks (open, the nearer extreme, the other extreme, close) with the bar's spread. Times
are the trade server's, as in the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path

from mtrobot.core.errors import ConfigError
from mtrobot.robots.backtest.bundled import BUNDLED, bundled_path
from mtrobot.robots.bars import TIMEFRAME_SECONDS
from mtrobot.sim.replay import ReplayTick, read_export


@dataclass(frozen=True)
class PriceData:
    source: str
    """The file name, or ``bundled:EURUSD_H1.csv``."""
    ticks: list[ReplayTick]
    bar_seconds: int | None
    """The file's bar length (None for a tick export)."""


def _bar_seconds(path: Path) -> int | None:
    with path.open(encoding="utf-8-sig") as handle:
        header = handle.readline().upper()
        if "<BID>" in header or "<OPEN>" not in header:
            return None
        times = []
        for line in handle:
            fields = line.replace(",", "\t").replace(";", "\t").split("\t")
            if len(fields) > 1 and fields[0].strip():
                times.append(_seconds(fields[0].strip(), fields[1].strip() if ":" in fields[1] else ""))
            if len(times) >= 200:
                break
    gaps = [b - a for a, b in pairwise(times) if b > a]
    return min(gaps) if gaps else None


def _seconds(date: str, time: str) -> int:
    moment = datetime.strptime(f"{date.replace('-', '.')} {time or '00:00:00'}"[:19], "%Y.%m.%d %H:%M:%S")
    return int((moment - datetime(1970, 1, 1)).total_seconds())


def load_prices(
    symbol: str,
    timeframe: str,
    point: float,
    *,
    path: Path | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
) -> PriceData:
    """The ticks to replay, between ``date_from`` (inclusive) and ``date_to`` (exclusive), server time."""
    source = str(path) if path is not None else ""
    if path is None:
        path = bundled_path(symbol, timeframe) or bundled_path(symbol, "H1")
        if path is None:
            shipped = ", ".join(f"{s} {t}" for s, t in BUNDLED)
            raise ConfigError(
                f"--data: no bundled data for {symbol}; bundled: {shipped}. Pass an MT5 export file"
            )
        source = f"bundled:{path.name}"
    if not path.is_file():
        raise ConfigError(f"--data: {path} is not a file")
    bar_seconds = _bar_seconds(path)
    wanted = TIMEFRAME_SECONDS[timeframe]
    if bar_seconds is not None and wanted < bar_seconds:
        raise ConfigError(
            f"--timeframe: {timeframe} bars cannot be built from this file's {bar_seconds // 60}-minute "
            "bars; use a file of shorter bars or ticks"
        )
    if bar_seconds is not None and wanted % bar_seconds:
        raise ConfigError(
            f"--timeframe: {timeframe} is not a whole number of the file's {bar_seconds // 60}-minute bars"
        )
    ticks = read_export(path, point)
    start = _ms(date_from) if date_from else None
    end = _ms(date_to) if date_to else None
    ticks = [t for t in ticks if (start is None or t[0] >= start) and (end is None or t[0] < end)]
    if not ticks:
        raise ConfigError("--from/--to: no prices in the chosen period")
    return PriceData(source, ticks, bar_seconds)


def _ms(moment: datetime) -> int:
    naive = moment.replace(tzinfo=None)
    return int((naive - datetime(1970, 1, 1)).total_seconds() * 1000)


def with_spread(
    ticks: list[ReplayTick], point: float, spread_points: int | None, default_points: int
) -> list[ReplayTick]:
    """Ticks with ``spread_points`` (if given) or, when the file carries no spread at all, the symbol's."""
    if spread_points is None:
        if any(ask > bid for _, bid, ask in ticks):
            return ticks
        spread_points = default_points
    spread = spread_points * point
    return [(t, bid, bid + spread) for t, bid, _ in ticks]
