"""The files of a backtest: ``report.json``, ``deals.csv``, ``orders.csv`` and ``equity.png`` (matplotlib,
no display)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.robots.backtest.engine import BacktestRun

DEAL_COLUMNS = (
    "time", "deal", "order", "type", "direction", "volume", "price", "sl", "tp",
    "commission", "swap", "profit", "balance", "comment",
)  # fmt: skip
ORDER_COLUMNS = ("time", "time_msc", "order_id", "robot", "action", "side", "volume", "position")
_TYPES = {mt5.DEAL_TYPE_BUY: "buy", mt5.DEAL_TYPE_SELL: "sell", mt5.DEAL_TYPE_BALANCE: "balance"}
_ENTRIES = {
    mt5.DEAL_ENTRY_IN: "in",
    mt5.DEAL_ENTRY_OUT: "out",
    mt5.DEAL_ENTRY_INOUT: "in/out",
    mt5.DEAL_ENTRY_OUT_BY: "out by",
}


def report_json(report: dict[str, Any]) -> str:
    """Stable text: sorted keys, fixed indentation, a final newline."""
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y.%m.%d %H:%M:%S")


def write_deals(run: BacktestRun, path: Path) -> None:
    """One row per deal, as MT5's report lists them; S/L and T/P are those of the deal's order."""
    balance = 0.0
    digits = run.info.digits
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(DEAL_COLUMNS)
        for deal in run.deals:
            balance = round(balance + deal.profit + deal.swap + deal.commission, 2)
            order = run.orders.get(deal.order)
            trade = deal.type in (mt5.DEAL_TYPE_BUY, mt5.DEAL_TYPE_SELL)
            writer.writerow(
                (
                    _time(deal.time_msc),
                    deal.ticket,
                    deal.order or "",
                    _TYPES.get(deal.type, str(deal.type)),
                    _ENTRIES.get(deal.entry, "") if trade else "",
                    f"{deal.volume:g}" if trade else "",
                    f"{deal.price:.{digits}f}" if trade else "",
                    f"{order.sl:.{digits}f}" if order is not None and order.sl else "",
                    f"{order.tp:.{digits}f}" if order is not None and order.tp else "",
                    f"{deal.commission:.2f}",
                    f"{deal.swap:.2f}",
                    f"{deal.profit:.2f}",
                    f"{balance:.2f}",
                    deal.comment,
                )
            )


def write_orders(run: BacktestRun, path: Path) -> None:
    """One row per order the robot host sent, with the market time of the decision: what a live run of the
    same robot over the same prices must send too (``tests/integration/robots/test_agent_parity.py``)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(ORDER_COLUMNS)
        for order in run.sent:
            volume = "" if order.volume is None else f"{order.volume:g}"
            writer.writerow(
                (
                    _time(order.time_msc),
                    order.time_msc,
                    order.order_id,
                    order.robot,
                    order.action,
                    order.side,
                    volume,
                    order.position or "",
                )
            )


def thin(count: int, values: list[float], limit: int = 2000) -> list[int]:
    """Indexes of at most about ``limit`` points that keep every bucket's lowest and highest value, so a
    plotted curve keeps its extremes (and its drawdowns)."""
    if count <= limit:
        return list(range(count))
    size = -(-count // (limit // 2))
    keep: set[int] = {0, count - 1}
    for start in range(0, count, size):
        bucket = range(start, min(count, start + size))
        keep.add(min(bucket, key=values.__getitem__))
        keep.add(max(bucket, key=values.__getitem__))
    return sorted(keep)


def write_equity_png(run: BacktestRun, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    peak, drawdowns = float("-inf"), []
    for equity in run.equities:
        peak = max(peak, equity)
        drawdowns.append(equity - peak)
    points = thin(len(run.equities), drawdowns)
    times = [datetime.fromtimestamp(run.times[i] / 1000, UTC) for i in points]
    equities = [run.equities[i] for i in points]
    balances = [run.balances[i] for i in points]
    drawdown = [drawdowns[i] for i in points]
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}, dpi=100
    )
    top.plot(times, equities, color="#1f77b4", linewidth=1.0, label="equity")
    top.plot(times, balances, color="#7f7f7f", linewidth=0.8, label="balance")
    top.set_title(f"{run.spec.robot} {run.spec.symbol} {run.spec.timeframe}: equity ({run.currency})")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.fill_between(times, drawdown, 0, color="#d62728", alpha=0.4, linewidth=0)
    bottom.set_ylabel("drawdown")
    bottom.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})
    plt.close(figure)


def write_outputs(run: BacktestRun, report: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(report_json(report), encoding="utf-8")
    write_deals(run, folder / "deals.csv")
    write_orders(run, folder / "orders.csv")
    write_equity_png(run, folder / "equity.png")
