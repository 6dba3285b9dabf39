"""The risk guards, each driven across its limit on the simulator: the pause, the reason, the flatten
where chosen; and orders over a limit are never handed to the order path."""

from __future__ import annotations

import pytest

from mtrobot.hub.schemas import AccountRisk

from .rig import allocation, host_rig

EURUSD = 1.10000
PIP = 0.0001  # 1 lot of EURUSD: 10 USD per pip


def falling(pips_per_bar: float, bars: int, rise: float = 0.0) -> list[float]:
    """Flat for two bars (the robot buys at the second), up ``rise`` pips, then down steadily."""
    path = [EURUSD, EURUSD, EURUSD + rise * PIP]
    return path + [path[-1] - pips_per_bar * PIP * (i + 1) for i in range(bars)]


@pytest.mark.parametrize("flatten", [False, True])
async def test_the_daily_loss_limit_pauses_the_portfolio_says_why_and_flattens_if_chosen(
    flatten: bool,
) -> None:
    risk = AccountRisk(max_daily_loss_money=300.0, flatten_on_breach=flatten)
    lots = {"sizing": {"mode": "fixed_lots", "lots": 1.0}}
    rig = await host_rig(falling(10, 6), [allocation("opener", **lots), allocation("flipper")], risk=risk)
    await rig.run(3)
    assert rig.positions() >= 1 and not [e for e in rig.events if e.kind == "guard"]
    await rig.run()
    guard = [e.message for e in rig.events if e.kind == "guard"]
    assert len(guard) == 1
    assert guard[0].startswith("Daily loss limit reached: equity is ")
    assert (
        "below 10,000.00 USD at the day's first check" in guard[0] and "the limit is 300.00 USD" in guard[0]
    )
    states = rig.host.robots()
    assert {s["state"] for s in states} == {"paused"}
    assert all(s["reason"].startswith("Daily loss limit reached") for s in states)
    orders_at_breach = len(rig.submitted)
    await rig.run()
    assert len(rig.submitted) == orders_at_breach  # paused robots send nothing more
    closes = [r for r in rig.submitted if r.robot == "flatten"]
    assert rig.positions() == (0 if flatten else rig.positions())
    assert bool(closes) is flatten
    if flatten:
        assert rig.positions() == 0 and any(e.kind == "flatten" for e in rig.events)
    await rig.close()


async def test_the_drawdown_guard_measures_from_the_days_peak_in_percent() -> None:
    # bought at the ask (1 point spread), up 60 pips on 1 lot (peak 10,599), then down 10 pips a bar:
    # 200 USD below the peak is 1.89% (no), 300 USD is 2.83% (fires)
    risk = AccountRisk(max_drawdown_percent=2.0)
    rig = await host_rig(falling(10, 30, rise=60), [allocation("opener", sizing={"lots": 1.0})], risk=risk)
    await rig.run(5)  # the rise and the first 20 pips down: 200 USD below the peak, under 2%
    assert not [e for e in rig.events if e.kind == "guard"]
    await rig.run()
    guard = [e.message for e in rig.events if e.kind == "guard"]
    assert len(guard) == 1 and guard[0].startswith("Equity guard: equity fell ")
    assert guard[0].startswith(
        "Equity guard: equity fell 300.00 USD (2.83%) from today's peak of 10,599.00 USD"
    )
    assert "the limit is 2%" in guard[0]
    assert rig.positions() == 1  # no flatten unless chosen
    await rig.close()


async def test_a_withdrawal_does_not_fire_the_drawdown_guard() -> None:
    risk = AccountRisk(max_drawdown_money=100.0)
    rig = await host_rig([EURUSD] * 6, [allocation("opener")], risk=risk)
    await rig.run(3)
    rig.world.server.balance_operation(rig.world.account, -2_000.0, "Withdrawal")
    await rig.run()
    assert not [e for e in rig.events if e.kind == "guard"]
    assert {s["state"] for s in rig.host.robots()} == {"running"}
    await rig.close()


async def test_an_order_beyond_the_robots_positions_limit_is_never_published() -> None:
    rig = await host_rig([EURUSD] * 8, [allocation("opener", params={"count": 5}, max_open_positions=2)])
    await rig.run()
    opens = [r for r in rig.submitted if r.action.value == "open"]
    assert len(opens) == 2 and rig.positions() == 2
    refused = [e.message for e in rig.events if e.kind == "refused"]
    assert refused and refused[0] == "Order not sent: the robot already has 2 of its 2 positions open."
    await rig.close()


async def test_an_order_beyond_the_accounts_positions_limit_is_never_published() -> None:
    robots = [allocation("opener", params={"count": 3}, max_open_positions=5), allocation("flipper")]
    rig = await host_rig([EURUSD] * 6, robots, risk=AccountRisk(max_open_positions=2))
    await rig.run()
    assert rig.positions() <= 2
    assert any("the account already has 2 of its 2 positions open" in e.message for e in rig.events)
    await rig.close()


async def test_an_order_larger_than_the_per_order_limit_is_never_published() -> None:
    robots = [allocation("opener", sizing={"lots": 2.5})]
    rig = await host_rig([EURUSD] * 4, robots, risk=AccountRisk(max_lots_per_order=1.0))
    await rig.run()
    assert rig.submitted == [] and rig.positions() == 0
    assert any(
        e.message == "Order not sent: 2.5 lots is more than the 1 lots allowed per order." for e in rig.events
    )
    await rig.close()


async def test_an_order_the_free_margin_cannot_carry_is_never_published() -> None:
    robots = [allocation("opener", sizing={"lots": 5.0})]  # 5 lots at 1:10, bought at 1.10001
    rig = await host_rig([EURUSD] * 4, robots, risk=AccountRisk(max_lots_per_order=10.0), leverage=10)
    await rig.run()
    assert rig.submitted == []
    message = next(e.message for e in rig.events if e.kind == "refused")
    assert message.startswith(
        "Order not sent: it needs 55,000.50 USD of margin and only 10,000.00 USD is free."
    )
    await rig.close()


async def test_an_order_that_would_drop_the_margin_level_below_the_minimum_is_never_published() -> None:
    robots = [allocation("opener", sizing={"lots": 0.5})]  # 5,500 USD margin at 1:10: level ~182%
    rig = await host_rig([EURUSD] * 4, robots, risk=AccountRisk(min_margin_level_percent=200.0), leverage=10)
    await rig.run()
    assert rig.submitted == []
    assert any("the margin level would fall to 182%, below the 200% minimum" in e.message for e in rig.events)
    await rig.close()


async def test_outside_its_trading_hours_a_robot_cannot_open() -> None:
    robots = [
        allocation(
            "opener",
            params={"count": 10},
            max_open_positions=10,
            trading_hours={"start": "03:00", "end": "05:00"},
        )
    ]
    rig = await host_rig([EURUSD] * 8, robots)  # bars close at 01:00 .. 07:00 server time
    await rig.run()
    opens = [r for r in rig.submitted if r.action.value == "open"]
    assert len(opens) == 2  # the closes at 03:00 and 04:00
    assert any("outside its trading hours (03:00-05:00 server time)" in e.message for e in rig.events)
    await rig.close()
