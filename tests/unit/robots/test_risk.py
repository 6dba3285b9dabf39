"""Sizing and the equity guards, exactly as docs/robots.md defines them."""

from __future__ import annotations

import pytest

from mtrobot.broker.structures import SymbolInfo
from mtrobot.hub.schemas import AccountRisk, Allocation, Sizing
from mtrobot.robots.risk import EquityGuards, in_trading_hours, normalise_volume, size_order

DAY = 86_400_000


def eurusd(**changes: object) -> SymbolInfo:
    blank = SymbolInfo._make([0] * len(SymbolInfo._fields))
    fields = {
        "name": "EURUSD",
        "digits": 5,
        "point": 0.00001,
        "trade_tick_size": 0.00001,
        "trade_tick_value": 1.0,  # per lot, in USD
        "volume_min": 0.01,
        "volume_max": 100.0,
        "volume_step": 0.01,
    }
    return blank._replace(**(fields | changes))  # type: ignore[arg-type]


def test_a_fixed_size_is_the_allocations_lots_rounded_down_to_the_step() -> None:
    assert (
        size_order(Sizing(lots=0.257), eurusd(), equity=1e4, entry=1.1, sl=None, margin_per_lot=None) == 0.25
    )
    assert normalise_volume(0.07, eurusd(volume_step=0.05)) == 0.05


def test_a_percent_of_equity_with_a_stop_risks_that_share_at_the_stop() -> None:
    # 1% of 10,000 = 100 USD; the stop is 50 pips = 500 points = 500 USD per lot: 0.2 lots
    lots = size_order(
        Sizing(mode="equity_percent", equity_percent=1.0),
        eurusd(),
        equity=10_000,
        entry=1.1,
        sl=1.095,
        margin_per_lot=None,
    )
    assert lots == pytest.approx(0.2)


def test_a_percent_of_equity_without_a_stop_commits_that_share_as_margin() -> None:
    lots = size_order(
        Sizing(mode="equity_percent", equity_percent=10.0),
        eurusd(),
        equity=10_000,
        entry=1.1,
        sl=None,
        margin_per_lot=1_100,
    )
    assert lots == pytest.approx(0.9)


def test_a_size_below_the_brokers_minimum_is_refused_with_the_reason() -> None:
    reason = size_order(
        Sizing(mode="equity_percent", equity_percent=0.01),
        eurusd(),
        equity=1_000,
        entry=1.1,
        sl=1.09,
        margin_per_lot=None,
    )
    assert isinstance(reason, str) and "below the broker's minimum of 0.01 lots on EURUSD" in reason


def test_trading_hours_include_the_start_exclude_the_end_and_may_span_midnight() -> None:
    day = Allocation(robot="ma_cross", symbol="EURUSD", trading_hours={"start": "08:00", "end": "17:30"})  # type: ignore[arg-type]
    night = Allocation(robot="ma_cross", symbol="EURUSD", trading_hours={"start": "22:00", "end": "02:00"})  # type: ignore[arg-type]
    at = lambda h, m=0: (h * 60 + m) * 60_000  # noqa: E731
    assert in_trading_hours(day, at(8)) and in_trading_hours(day, at(17, 29))
    assert not in_trading_hours(day, at(17, 30)) and not in_trading_hours(day, at(7, 59))
    assert (
        in_trading_hours(night, at(23))
        and in_trading_hours(night, at(1, 59))
        and not in_trading_hours(night, at(12))
    )


def test_the_daily_loss_is_measured_from_the_first_check_of_the_day_in_money_and_percent() -> None:
    guards = EquityGuards(AccountRisk(max_daily_loss_percent=5.0))
    assert guards.observe(DAY + 1, 10_000.0, 0.0, "USD") is None
    assert guards.observe(DAY + 2, 9_500.01, 0.0, "USD") is None  # 4.9999%
    breach = guards.observe(DAY + 3, 9_500.0, 0.0, "USD")
    assert breach is not None and breach.kind == "daily_loss"
    assert breach.message.startswith(
        "Daily loss limit reached: equity is 500.00 USD (5.00%) below 10,000.00 USD"
    )
    # the next day measures from its own first check: yesterday's loss is not today's
    assert guards.observe(2 * DAY + 1, 9_400.0, 0.0, "USD") is None


def test_the_drawdown_is_measured_from_the_days_peak_not_from_the_start() -> None:
    guards = EquityGuards(AccountRisk(max_drawdown_money=500.0, max_drawdown_percent=5.0))
    guards.observe(DAY, 10_000.0, 0.0, "USD")
    guards.observe(DAY + 1, 10_400.0, 0.0, "USD")
    assert guards.observe(DAY + 2, 9_901.0, 0.0, "USD") is None  # 499 = 4.80% of 10,400
    breach = guards.observe(DAY + 3, 9_900.0, 0.0, "USD")
    assert breach is not None and breach.kind == "drawdown"
    assert breach.message.startswith(
        "Equity guard: equity fell 500.00 USD (4.81%) from today's peak of 10,400.00 USD"
    )
    assert "the limit is 500.00 USD" in breach.message


def test_deposits_and_withdrawals_after_the_first_check_move_neither_guard() -> None:
    guards = EquityGuards(AccountRisk(max_daily_loss_money=100.0, max_drawdown_money=100.0))
    guards.observe(DAY, 10_000.0, 5_000.0, "USD")  # deposited before the first check: part of the reference
    assert guards.reference == 10_000.0
    assert guards.observe(DAY + 1, 7_000.0, 2_000.0, "USD") is None  # 3,000 withdrawn, nothing lost
    assert guards.observe(DAY + 2, 12_000.0, 7_000.0, "USD") is None  # 5,000 deposited: no new peak
    assert guards.peak == 10_000.0
    breach = guards.observe(DAY + 3, 11_900.0, 7_000.0, "USD")
    assert breach is not None and breach.kind == "daily_loss"


def test_resuming_rebases_the_drawdown_but_not_the_daily_loss() -> None:
    guards = EquityGuards(AccountRisk(max_drawdown_money=100.0, max_daily_loss_money=150.0))
    guards.observe(DAY, 10_000.0, 0.0, "USD")
    assert guards.observe(DAY + 1, 9_890.0, 0.0, "USD") is not None
    guards.rebase()
    assert guards.observe(DAY + 2, 9_880.0, 0.0, "USD") is None
    breach = guards.observe(DAY + 3, 9_850.0, 0.0, "USD")
    assert breach is not None and breach.kind == "daily_loss"


def test_no_limit_set_means_the_guards_are_off() -> None:
    assert not EquityGuards(AccountRisk()).armed
