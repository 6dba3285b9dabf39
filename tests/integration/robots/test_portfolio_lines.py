"""What the robot host says about its portfolio: each load once, and a repeat of the same portfolio says
nothing (the agent applies the hub's copy and then its hand-off copy, often the same one)."""

from __future__ import annotations

from mtrobot.hub.schemas import AccountRisk, PortfolioConfig

from .rig import allocation, host_rig


def portfolio_lines(rig) -> list[str]:
    return [e.message for e in rig.events if e.kind == "portfolio"]


async def test_an_empty_portfolio_loaded_twice_is_announced_once() -> None:
    rig = await host_rig([1.1, 1.1001, 1.1002], [])
    try:
        await rig.host.set_portfolio(PortfolioConfig(active=True, robots=[], risk=AccountRisk()))
        assert portfolio_lines(rig) == ["Portfolio loaded: no robot."]
    finally:
        await rig.close()


async def test_a_changed_portfolio_is_announced_again() -> None:
    rig = await host_rig([1.1, 1.1001, 1.1002], [])
    try:
        changed = PortfolioConfig(active=True, robots=[allocation("opener")], risk=AccountRisk())
        await rig.host.set_portfolio(changed)
        await rig.host.set_portfolio(changed)
        lines = portfolio_lines(rig)
        assert lines[0] == "Portfolio loaded: no robot."
        assert len(lines) == 2 and lines[1].startswith("Portfolio loaded: opener"), lines
    finally:
        await rig.close()
