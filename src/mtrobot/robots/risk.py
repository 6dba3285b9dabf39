"""Pre-trade risk and the account guards. docs/robots.md states what each limit means, exactly.

Sizing turns an allocation's ``Sizing`` into lots. The pre-trade checks run on every opening order before
it is published, and refuse it (never shrink it) with a sentence that names the limit: trading hours, the
robot's and the account's open positions, the largest order, free margin and the margin level after the
order. Closing orders are never refused: reducing risk is always allowed.

The guards watch the account's equity through the trading day (00:00 to 00:00 in the trade server's
clock). Deposits and withdrawals made after the day's first check are taken out, so moving money never
looks like a profit or a loss (money moved earlier in the day is already in the reference):

    A  = equity - (deposits - withdrawals since the day's first check)   the adjusted equity, at each check
    R  = equity at the first check of the day                              the day's reference
    P  = the highest A seen since the first check of the day               the day's peak (starts at R)
    daily loss = R - A      (percent: of R)        drawdown = P - A      (percent: of P)

A guard fires when its money or its percent limit is reached (``>=``). Equity includes the floating
profit, swaps and commissions of open positions, so the guards see a loss before it is realised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mtrobot.broker.structures import AccountInfo, SymbolInfo
from mtrobot.hub.schemas import AccountRisk, Allocation, Sizing

DAY_MS = 86_400_000
VOLUME_EPS = 1e-9


def _money(value: float, currency: str) -> str:
    return f"{value:,.2f} {currency}".strip()


def normalise_volume(volume: float, info: SymbolInfo) -> float:
    """``volume`` rounded down to the symbol's volume step (never up: sizing must not exceed the risk)."""
    step = info.volume_step or 0.01
    steps = math.floor(volume / step + VOLUME_EPS)
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return round(steps * step, decimals + 2)


def size_order(
    sizing: Sizing,
    info: SymbolInfo,
    *,
    equity: float,
    entry: float,
    sl: float | None,
    margin_per_lot: float | None,
) -> float | str:
    """Lots for one opening order, or the reason there can be none.

    ``fixed_lots``: the allocation's lots. ``equity_percent`` with a stop loss: the volume whose loss at
    the stop is that share of equity (distance / tick size × tick value per lot). Without a stop loss:
    the volume whose margin is that share of equity.
    """
    if sizing.mode == "fixed_lots":
        raw = sizing.lots
        how = f"{sizing.lots:g} lots"
    else:
        budget = equity * sizing.equity_percent / 100.0
        how = f"{sizing.equity_percent:g}% of equity ({budget:,.2f})"
        if sl is not None and sl > 0:
            tick_size = info.trade_tick_size or info.point
            loss_per_lot = abs(entry - sl) / tick_size * info.trade_tick_value
            if loss_per_lot <= 0:
                return "the stop loss is at the entry price, so no volume can be sized from it"
            raw = budget / loss_per_lot
        elif margin_per_lot and margin_per_lot > 0:
            raw = budget / margin_per_lot
        else:
            return "the broker did not tell the margin of one lot, so no volume can be sized"
    volume = normalise_volume(raw, info)
    if volume + VOLUME_EPS < info.volume_min:
        return (
            f"the size for {how} is {raw:.4g} lots, below the broker's minimum of {info.volume_min:g} lots "
            f"on {info.name}"
        )
    return min(volume, info.volume_max)


def in_trading_hours(allocation: Allocation, server_ms: int) -> bool:
    hours = allocation.trading_hours
    if hours is None:
        return True
    minute = (server_ms % DAY_MS) // 60_000
    start = int(hours.start[:2]) * 60 + int(hours.start[3:])
    end = int(hours.end[:2]) * 60 + int(hours.end[3:])
    return start <= minute < end if start < end else (minute >= start or minute < end)


@dataclass(frozen=True, slots=True)
class OpenCheck:
    """What the pre-trade check of one opening order looks at."""

    volume: float
    server_ms: int
    robot_positions: int
    """This allocation's open positions plus its opening orders in flight, after this event's closes."""
    account_positions: int
    """The same for the whole account."""
    margin_needed: float
    account: AccountInfo


def check_open(risk: AccountRisk, allocation: Allocation, check: OpenCheck) -> str | None:
    """The reason an opening order must not be published, or None."""
    if not in_trading_hours(allocation, check.server_ms):
        hours = allocation.trading_hours
        assert hours is not None
        return f"outside its trading hours ({hours.start}-{hours.end} server time)"
    if check.robot_positions >= allocation.max_open_positions:
        return (
            f"the robot already has {check.robot_positions} of its {allocation.max_open_positions} "
            "positions open"
        )
    if check.account_positions >= risk.max_open_positions:
        return (
            f"the account already has {check.account_positions} of its {risk.max_open_positions} "
            "positions open"
        )
    if check.volume > risk.max_lots_per_order + VOLUME_EPS:
        return f"{check.volume:g} lots is more than the {risk.max_lots_per_order:g} lots allowed per order"
    account = check.account
    currency = account.currency
    if check.margin_needed > account.margin_free:
        return (
            f"it needs {_money(check.margin_needed, currency)} of margin and only "
            f"{_money(account.margin_free, currency)} is free"
        )
    margin_after = account.margin + check.margin_needed
    if margin_after > 0:
        level = account.equity / margin_after * 100.0
        if level < risk.min_margin_level_percent:
            return (
                f"the margin level would fall to {level:.0f}%, below the "
                f"{risk.min_margin_level_percent:g}% minimum"
            )
    return None


@dataclass(frozen=True, slots=True)
class Breach:
    kind: str
    """``daily_loss`` or ``drawdown``."""
    message: str


class EquityGuards:
    """The daily loss limit and the intraday drawdown guard of one account (see the module docstring)."""

    def __init__(self, risk: AccountRisk) -> None:
        self.risk = risk
        self.day: int | None = None
        self.reference = 0.0
        self.peak = 0.0
        self.adjusted = 0.0
        self._flows_at_start = 0.0

    @property
    def armed(self) -> bool:
        r = self.risk
        limits = (
            r.max_daily_loss_money,
            r.max_daily_loss_percent,
            r.max_drawdown_money,
            r.max_drawdown_percent,
        )
        return any(limit is not None for limit in limits)

    def observe(self, server_ms: int, equity: float, cash_flows_today: float, currency: str) -> Breach | None:
        """One check: ``cash_flows_today`` is deposits minus withdrawals since 00:00 server time."""
        day = server_ms // DAY_MS
        if day != self.day:
            self.day, self._flows_at_start = day, cash_flows_today
            self.reference = self.peak = equity
        adjusted = equity - (cash_flows_today - self._flows_at_start)
        self.peak = max(self.peak, adjusted)
        self.adjusted = adjusted
        return self._daily_loss(currency) or self._drawdown(currency)

    def rebase(self) -> None:
        """Start the drawdown measurement again from the last adjusted equity (after a trader's resume)."""
        self.peak = self.adjusted

    def _daily_loss(self, currency: str) -> Breach | None:
        r, loss = self.risk, self.reference - self.adjusted
        pct = loss / self.reference * 100.0 if self.reference > 0 else 0.0
        limit = _reached(loss, pct, r.max_daily_loss_money, r.max_daily_loss_percent, currency)
        if limit is None:
            return None
        return Breach(
            "daily_loss",
            f"Daily loss limit reached: equity is {_money(loss, currency)} ({pct:.2f}%) below "
            f"{_money(self.reference, currency)} at the day's first check (server time; deposits and "
            f"withdrawals excluded); the limit is {limit}.",
        )

    def _drawdown(self, currency: str) -> Breach | None:
        r, drop = self.risk, self.peak - self.adjusted
        pct = drop / self.peak * 100.0 if self.peak > 0 else 0.0
        limit = _reached(drop, pct, r.max_drawdown_money, r.max_drawdown_percent, currency)
        if limit is None:
            return None
        return Breach(
            "drawdown",
            f"Equity guard: equity fell {_money(drop, currency)} ({pct:.2f}%) from today's peak of "
            f"{_money(self.peak, currency)} (deposits and withdrawals excluded); the limit is {limit}.",
        )


def _reached(
    money: float, pct: float, money_limit: float | None, pct_limit: float | None, currency: str
) -> str | None:
    if money_limit is not None and money >= money_limit:
        return _money(money_limit, currency)
    if pct_limit is not None and pct >= pct_limit:
        return f"{pct_limit:g}%"
    return None
