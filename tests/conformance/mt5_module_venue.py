"""Conformance venue ``mtrobot-mt5``: the suite through this project's own drop-in ``MetaTrader5`` module.

The ``metatrader5`` backend (worker thread, argument shaping, result copying: the code that drives the
official package on Windows) is handed an :class:`~mtrobot.mt5.module.Mt5Module` instead of the package, one
per terminal, as each process has its own module; every module reaches the simulator through its client.
So whatever the suite proves of a real terminal, it proves of ``mtrobot.mt5`` too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from mtrobot.broker.backends import open_terminal
from mtrobot.mt5.client import Mt5Client
from mtrobot.mt5.module import Mt5Module
from mtrobot.mt5.target import embedded
from mtrobot.sim.admin import LocalAdmin
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.clock import VirtualClock
from tests.conformance.terminal_venues import split_options
from tests.conformance.venues import HEDGING, INVESTOR, MASTER, WEDNESDAY_NOON, Venue


@contextlib.asynccontextmanager
async def mtrobot_mt5_venue(server: str) -> AsyncIterator[Venue]:
    broker = SimBroker(clock=VirtualClock(WEDNESDAY_NOON))
    admin = LocalAdmin(broker)
    login = await admin.create_account(server=server, password=MASTER, investor_password=INVESTOR)
    loop = asyncio.get_running_loop()
    simulator = embedded(broker)

    def make(**options: Any) -> Any:
        ours, sim = split_options(options)
        client = Mt5Client(simulator=simulator, loop=loop, **sim)
        return open_terminal("metatrader5", module=Mt5Module(client), **ours)

    venue = Venue("mtrobot-mt5", server, login, MASTER, INVESTOR, make, admin, hedging=server == HEDGING)
    try:
        yield venue
    finally:
        await venue.close()
