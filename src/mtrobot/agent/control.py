"""The agent's control commands (``agent.control.{account}``): what each does, in one place.

- ``pause``: close the trading gate (no new opens, from robots or by hand) and pause the robots;
  positions stay open, closes and ``flatten`` still work.
- ``resume``: open the gate again (also after a quarantine: only a person sends it) and resume the robots.
- ``flatten``: close every open position of the account (never blocked by the gate).
- ``reload``: read the portfolio from the hub again and apply it.
- ``quarantine``: like pause, with the operator's reason, shown as ``quarantined`` (the supervisor's).
- ``stop``: stop the agent cleanly; the supervisor does not restart it on its own.
- ``status``: nothing; the reply carries the state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mtrobot.bus import subjects
from mtrobot.core.agent import ControlRequest
from mtrobot.hub.client import ConfigClient
from mtrobot.hub.schemas import PortfolioConfig

if TYPE_CHECKING:
    from mtrobot.agent.service import Agent


async def carry_out(agent: Agent, request: ControlRequest) -> tuple[bool, str]:
    host = agent.robots.host if agent.robots is not None else None
    cmd = request.cmd
    if cmd == "pause":
        reason = request.reason or "paused by the trader"
        agent.gate.pause(reason)
        if host is not None:
            await host.pause(reason)
        return True, "Trading paused: no new positions are opened; open positions stay, closing still works."
    if cmd == "quarantine":
        reason = request.reason or "by the operator"
        agent.gate.quarantine(reason)
        if host is not None:
            await host.pause(f"quarantined: {reason}")
        return True, f"Quarantined: {reason}. Trading stays stopped until a person resumes it."
    if cmd == "resume":
        agent.gate.resume()
        if host is not None:
            await host.resume()
        return True, "Trading resumed."
    if cmd == "flatten":
        if host is None:
            return False, "The agent is still starting; try flatten again in a few seconds."
        count = await host.flatten(request.reason or "asked by the trader")
        return True, f"Closing {count} open positions." if count else "No open positions to close."
    if cmd == "reload":
        if host is None or agent.nc is None:
            return False, "The agent is still starting; nothing to reload yet."
        client = ConfigClient(
            subjects.portfolio_service(agent.account), PortfolioConfig(), nc=agent.nc, register=False
        )
        try:
            await client.init_async()
            await host.set_portfolio(await client.get_config())
        finally:
            await client.close()
        return True, "Portfolio reloaded from the hub."
    if cmd == "stop":
        return True, "The agent is stopping."
    return True, f"The agent is {agent.state.value}."
