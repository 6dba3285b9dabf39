"""A simulated broker for tests and backtests in one line::

    async with sim_harness(start=datetime(2026, 3, 4, 10, tzinfo=UTC)) as sim:
        login = await sim.admin.create_account(server="MTRobot-Demo", password=..., investor_password=...)
        term = sim.terminal()            # backend "sim" over TCP (or "sim-inprocess" with tcp=False)
        await term.initialize(login=login, password=..., server="MTRobot-Demo")
        await sim.admin.lose_replies(server="MTRobot-Demo", n=1)

``start`` gives a virtual clock (reproducible; moves with ``admin.advance_clock``); without it the broker
runs on real time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mtrobot.broker.backends import open_terminal
from mtrobot.broker.terminal import Terminal
from mtrobot.sim.admin import LocalAdmin, SimAdmin
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.clock import Clock, RealClock, VirtualClock
from mtrobot.sim.config import BrokerConfig
from mtrobot.sim.tcp import SimServer


@dataclass
class SimHarness:
    broker: SimBroker
    admin: SimAdmin | LocalAdmin
    host: str = "127.0.0.1"
    port: int = 0

    @property
    def backend(self) -> str:
        return "sim" if self.port else "sim-inprocess"

    def terminal(self, **options: Any) -> Terminal:
        """A new, not yet initialised terminal on this broker (options: call_timeout, algo_trading, ...)."""
        if self.port:
            return open_terminal("sim", host=self.host, port=self.port, **options)
        return open_terminal("sim-inprocess", broker=self.broker, **options)


@contextlib.asynccontextmanager
async def sim_harness(
    *,
    start: datetime | None = None,
    config: BrokerConfig | None = None,
    tcp: bool = True,
    tick_period_s: float | None = None,
) -> AsyncIterator[SimHarness]:
    clock: Clock = VirtualClock(start) if start is not None else RealClock()
    broker = SimBroker(config, clock)
    if not tcp:
        yield SimHarness(broker, LocalAdmin(broker))
        return
    period = tick_period_s if tick_period_s is not None else (None if start is not None else 1.0)
    server = SimServer(broker, tick_period_s=period)
    port = await server.start()
    try:
        yield SimHarness(broker, SimAdmin("127.0.0.1", port), "127.0.0.1", port)
    finally:
        await server.stop()
