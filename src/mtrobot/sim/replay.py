"""Read MetaTrader 5 history exports (Symbols -> Bars / Ticks -> Export) for replay.

Bars::

    <DATE>	<TIME>	<OPEN>	<HIGH>	<LOW>	<CLOSE>	<TICKVOL>	<VOL>	<SPREAD>
    2024.01.02	00:00:00	1.10427	1.10429	1.10384	1.10392	154	0	12

(D1 and larger exports have no ``<TIME>`` column.) Ticks::

    <DATE>	<TIME>	<BID>	<ASK>	<LAST>	<VOLUME>	<FLAGS>
    2024.01.02	00:00:00.123	1.10427	1.10440			6

Tick exports leave a field empty when it did not change, so bid and ask are carried forward. Times in
both are the trade server's wall clock, which is what the simulator keeps too. Bars are turned into four
ticks (open, then the nearer extreme, the other extreme, close) with the bar's spread, in points.
"""

from __future__ import annotations

import calendar
import csv
from collections.abc import Iterator
from pathlib import Path

from mtrobot.core.errors import ConfigError

ReplayTick = tuple[int, float, float]
"""(server time ms, bid, ask)."""


def _server_ms(date: str, time: str) -> int:
    year, month, day = (int(x) for x in date.replace("-", ".").split("."))
    clock, _, fraction = (time or "00:00:00").partition(".")
    hours, minutes, seconds = (int(x) for x in [*clock.split(":"), "0", "0"][:3])
    base = calendar.timegm((year, month, day, hours, minutes, seconds))
    return base * 1000 + (int(fraction[:3].ljust(3, "0")) if fraction else 0)


def read_export(path: Path, point: float) -> list[ReplayTick]:
    """Ticks to replay from an MT5 bar or tick export; ``point`` converts a bar's spread to price."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            sample = handle.readline()
            delimiter = "\t" if "\t" in sample else ("," if "," in sample else ";")
            header = [h.strip().strip("<>").upper() for h in sample.strip().split(delimiter)]
            return _parse(path, header, csv.reader(handle, delimiter=delimiter), point)
    except OSError as exc:
        raise ConfigError(f"replay: cannot read {path}: {exc}") from exc


def _parse(path: Path, header: list[str], rows: Iterator[list[str]], point: float) -> list[ReplayTick]:
    if "DATE" not in header:
        raise ConfigError(f"replay: {path} is not an MT5 export (no <DATE> column)")
    column = {name: i for i, name in enumerate(header)}
    try:
        if "BID" in column:
            return list(_ticks(rows, column))
        if {"OPEN", "HIGH", "LOW", "CLOSE"} <= set(column):
            return list(_bars(rows, column, point))
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"replay: {path}: bad row ({exc})") from exc
    raise ConfigError(f"replay: {path} has neither <BID> nor <OPEN>..<CLOSE> columns")


def _field(row: list[str], column: dict[str, int], name: str) -> str:
    index = column.get(name)
    return row[index].strip() if index is not None and index < len(row) else ""


def _ticks(rows: Iterator[list[str]], column: dict[str, int]) -> Iterator[ReplayTick]:
    bid = ask = 0.0
    for row in rows:
        if not row or not row[0].strip():
            continue
        raw_bid, raw_ask = _field(row, column, "BID"), _field(row, column, "ASK")
        bid = float(raw_bid) if raw_bid else bid
        ask = float(raw_ask) if raw_ask else ask
        if bid > 0 and ask > 0:
            yield _server_ms(_field(row, column, "DATE"), _field(row, column, "TIME")), bid, ask


def _bars(rows: Iterator[list[str]], column: dict[str, int], point: float) -> Iterator[ReplayTick]:
    for row in rows:
        if not row or not row[0].strip():
            continue
        start = _server_ms(_field(row, column, "DATE"), _field(row, column, "TIME"))
        o, h, low, c = (float(_field(row, column, k)) for k in ("OPEN", "HIGH", "LOW", "CLOSE"))
        spread = float(_field(row, column, "SPREAD") or 0) * point
        path = (o, low, h, c) if c >= o else (o, h, low, c)
        for offset, price in zip((0, 15_000, 30_000, 45_000), path, strict=True):
            yield start + offset, price, price + spread
