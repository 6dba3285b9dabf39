"""The backtest report: what MT5's strategy tester and backtesting.py users look for, each defined.

Everything is computed from the simulator's deals and the equity sampled at every replayed tick, and
rounded (money to 2 decimals, ratios to 4) so that the same backtest gives byte-identical JSON.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import TradeDeal
from mtrobot.robots.backtest.engine import BacktestRun

TRADING_DAYS_PER_YEAR = 252

DEFINITIONS: dict[str, str] = {
    "trade": "a closing deal (entry out, in/out or out-by); its result is the deal's profit, swap and "
    "commission plus the share of the opening commission of the volume it closes",
    "net_profit": "final balance minus initial deposit, after commissions and swaps (all positions are "
    "closed at the end of the test)",
    "gross_profit": "sum of the results of the winning trades",
    "gross_loss": "sum of the results of the losing trades (negative)",
    "profit_factor": "gross profit / |gross loss|; null when there is no losing trade",
    "max_drawdown": "the largest fall of equity from a previous peak, equity sampled at every tick; "
    "money and percent (of that peak) are each the largest of its kind and may come from different falls",
    "recovery_factor": "net profit / max drawdown in money; null without a drawdown",
    "sharpe_ratio": "mean / standard deviation (n-1) of daily returns of equity at each server day's last "
    "tick, times sqrt(252); risk-free rate 0; null with fewer than 2 daily returns or no variation",
    "win_rate_percent": "winning trades / trades x 100 (a trade with a result of exactly 0 neither wins "
    "nor loses)",
    "expectancy": "net result per trade: (gross profit + gross loss) / trades",
    "exposure_percent": "bars of the timeframe during which at least one position was open / bars x 100",
    "buy_and_hold_return_percent": "(last bid - first bid) / first bid x 100, before costs",
    "return_percent": "net profit / initial deposit x 100",
}


def _money(value: float) -> float:
    return round(value + 0.0, 2)


def _ratio(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value + 0.0, 4)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class _Open:
    volume: float = 0.0
    commission: float = 0.0


def trade_results(deals: list[TradeDeal]) -> list[tuple[TradeDeal, float]]:
    """Each closing deal with its result (see ``DEFINITIONS["trade"]``), in time order."""
    book: dict[int, _Open] = {}
    results = []
    for deal in deals:
        if deal.type not in (mt5.DEAL_TYPE_BUY, mt5.DEAL_TYPE_SELL):
            continue
        held = book.setdefault(deal.position_id, _Open())
        if deal.entry == mt5.DEAL_ENTRY_IN:
            held.volume += deal.volume
            held.commission += deal.commission
            continue
        if deal.entry == mt5.DEAL_ENTRY_INOUT:  # a netting reversal: closes the old volume, opens the rest
            closed = held.volume
            own = deal.commission * (closed / deal.volume if deal.volume else 0.0)
            results.append((deal, deal.profit + deal.swap + own + held.commission))
            held.volume, held.commission = deal.volume - closed, deal.commission - own
            continue
        share = held.commission * min(1.0, deal.volume / held.volume) if held.volume > 0 else 0.0
        held.volume = max(0.0, held.volume - deal.volume)
        held.commission -= share
        results.append((deal, deal.profit + deal.swap + deal.commission + share))
    return results


def max_drawdown(equities: list[float]) -> tuple[float, float]:
    """(money, percent): the largest fall from a running peak, each maximised on its own."""
    peak, worst_money, worst_pct = -math.inf, 0.0, 0.0
    for equity in equities:
        peak = max(peak, equity)
        drop = peak - equity
        worst_money = max(worst_money, drop)
        if peak > 0:
            worst_pct = max(worst_pct, drop / peak * 100.0)
    return worst_money, worst_pct


def sharpe_ratio(times: list[int], equities: list[float], initial: float) -> float | None:
    closes: dict[int, float] = {}
    for ms, equity in zip(times, equities, strict=True):
        closes[ms // 86_400_000] = equity
    levels = [initial, *closes.values()]
    returns = [b / a - 1.0 for a, b in pairwise(levels) if a > 0]
    if len(returns) < 2:
        return None
    spread = statistics.stdev(returns)
    if spread == 0:
        return None
    return statistics.fmean(returns) / spread * math.sqrt(TRADING_DAYS_PER_YEAR)


def build_report(run: BacktestRun) -> dict[str, Any]:
    spec = run.spec
    initial = spec.balance
    final = run.balances[-1]
    net = final - initial
    results = trade_results(run.deals)
    wins = [r for _, r in results if r > 0]
    losses = [r for _, r in results if r < 0]
    gross_profit, gross_loss = sum(wins), sum(losses)
    trades = len(results)
    dd_money, dd_pct = max_drawdown(run.equities)
    trade_deals = [d for d in run.deals if d.type in (mt5.DEAL_TYPE_BUY, mt5.DEAL_TYPE_SELL)]
    # a closing sell deal closes a long position: the trade was a long one
    longs = sum(1 for deal, _ in results if deal.type == mt5.DEAL_TYPE_SELL)
    return {
        "robot": spec.robot,
        "parameters": run.params,
        "symbol": spec.symbol,
        "timeframe": spec.timeframe,
        "account": {
            "type": spec.account,
            "server": run.server,
            "currency": run.currency,
            "initial_deposit": _money(initial),
            "leverage": spec.leverage,
        },
        "sizing": spec.sizing.model_dump(),
        "data": {
            "source": run.source,
            "first_tick": _iso(run.times[0]),
            "last_tick": _iso(run.times[-1]),
            "bars": run.bars,
            "ticks": run.ticks,
            "spread_points": spec.spread_points if spec.spread_points is not None else "from the data",
            "commission_per_lot_per_side": _money(run.commission_per_lot),
        },
        "results": {
            "net_profit": _money(net),
            "gross_profit": _money(gross_profit),
            "gross_loss": _money(gross_loss),
            "profit_factor": _ratio(gross_profit / -gross_loss) if gross_loss < 0 else None,
            "return_percent": _ratio(net / initial * 100.0) if initial else None,
            "final_balance": _money(final),
            "max_drawdown_money": _money(dd_money),
            "max_drawdown_percent": _ratio(dd_pct),
            "recovery_factor": _ratio(net / dd_money) if dd_money > 0 else None,
            "sharpe_ratio": _ratio(sharpe_ratio(run.times, run.equities, initial)),
            "trades": trades,
            "long_trades": longs,
            "short_trades": trades - longs,
            "winning_trades": len(wins),
            "losing_trades": len(losses),
            "win_rate_percent": _ratio(len(wins) / trades * 100.0) if trades else None,
            "expectancy": _money((gross_profit + gross_loss) / trades) if trades else None,
            "average_win": _money(statistics.fmean(wins)) if wins else None,
            "average_loss": _money(statistics.fmean(losses)) if losses else None,
            "largest_win": _money(max(wins)) if wins else None,
            "largest_loss": _money(min(losses)) if losses else None,
            "commission": _money(sum(d.commission for d in trade_deals)),
            "swap": _money(sum(d.swap for d in trade_deals)),
            "exposure_percent": _ratio(run.exposed_bars / run.bars * 100.0) if run.bars else None,
            "buy_and_hold_return_percent": _ratio((run.last_bid - run.first_bid) / run.first_bid * 100.0),
        },
        "orders": {
            "sent": len(run.sent),
            "rejected_by_broker": len(run.rejections),
            "rejections": [
                {
                    "order_id": r.order_id,
                    "time": _iso(r.time_msc),
                    "retcode": r.retcode_name,
                    "message": r.message,
                }
                for r in run.rejections[:50]
            ],
        },
        "events": [
            {"time": e.ts.strftime("%Y-%m-%d %H:%M:%S"), "kind": e.kind, "message": e.message}
            for e in run.events
            if e.kind != "portfolio"
        ][:200],
        "definitions": DEFINITIONS,
    }
