"""Where the conformance suite runs: a *venue* is a terminal backend plus an account to use on it.

The suite talks to the :class:`~mtrobot.broker.terminal.Terminal` interface only. A venue may also offer an
admin channel (the simulator's back office): tests that need one to set prices or inject faults skip
without it, so the same suite runs unchanged against a real terminal.

Against a real terminal use a demo account with no open positions or pending orders: the trading tests
open and close minimum positions and count what they find.

To add a backend, register an async context manager factory in :data:`VENUES` under the backend id and
list the id in ``MTROBOT_CONFORMANCE_BACKENDS`` (comma-separated; default :data:`DEFAULT_BACKENDS`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from mtrobot.broker.backends import open_terminal
from mtrobot.broker.terminal import Terminal
from mtrobot.sim.admin import LocalAdmin, SimAdmin
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.clock import VirtualClock
from mtrobot.sim.tcp import SimServer

HEDGING = "MTRobot-Demo"
NETTING = "Northwind-Live"
MASTER = "Master-pass-1"
INVESTOR = "Investor-pass-1"
WEDNESDAY_NOON = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)
"""A Wednesday, 12:00 server time (GMT+2): markets open, far from rollover and maintenance."""


@dataclass
class Venue:
    backend: str
    server: str
    login: int
    password: str
    investor_password: str | None
    make_terminal: Callable[..., Terminal]
    admin: LocalAdmin | SimAdmin | None = None
    symbol: str = "EURUSD"
    hedging: bool = True
    _terminals: list[Terminal] = field(default_factory=list)

    def terminal(self, **options: Any) -> Terminal:
        """A new terminal of this venue, not yet initialised (closed at the end of the test)."""
        term = self.make_terminal(**options)
        self._terminals.append(term)
        return term

    async def connected(self, *, investor: bool = False, **options: Any) -> Terminal:
        term = self.terminal(**options)
        password = self.investor_password if investor else self.password
        if password is None:  # a real account tested without its investor password
            pytest.skip("this venue has no investor password (MTROBOT_MT5_INVESTOR_PASSWORD)")
        ok = await term.initialize(login=self.login, password=password, server=self.server)
        assert ok, await term.last_error()
        return term

    async def close(self) -> None:
        for term in self._terminals:
            with contextlib.suppress(Exception):
                await term.shutdown()


VenueFactory = Callable[[str], contextlib.AbstractAsyncContextManager[Venue]]


@contextlib.asynccontextmanager
async def sim_inprocess_venue(server: str) -> AsyncIterator[Venue]:
    broker = SimBroker(clock=VirtualClock(WEDNESDAY_NOON))
    admin = LocalAdmin(broker)
    login = await admin.create_account(server=server, password=MASTER, investor_password=INVESTOR)
    venue = Venue(
        "sim-inprocess",
        server,
        login,
        MASTER,
        INVESTOR,
        lambda **o: open_terminal("sim-inprocess", broker=broker, **o),
        admin,
        hedging=server == HEDGING,
    )
    try:
        yield venue
    finally:
        await venue.close()


@contextlib.asynccontextmanager
async def sim_tcp_venue(server: str) -> AsyncIterator[Venue]:
    broker = SimBroker(clock=VirtualClock(WEDNESDAY_NOON))
    tcp = SimServer(broker, tick_period_s=None)
    port = await tcp.start()
    admin = SimAdmin("127.0.0.1", port)
    login = await admin.create_account(server=server, password=MASTER, investor_password=INVESTOR)
    venue = Venue(
        "sim",
        server,
        login,
        MASTER,
        INVESTOR,
        lambda **o: open_terminal("sim", host="127.0.0.1", port=port, **o),
        admin,
        hedging=server == HEDGING,
    )
    try:
        yield venue
    finally:
        await venue.close()
        await tcp.stop()


VENUES: dict[str, VenueFactory] = {"sim-inprocess": sim_inprocess_venue, "sim": sim_tcp_venue}
"""Backend id -> venue factory (argument: the server flavour wanted, HEDGING or NETTING)."""

from tests.conformance.terminal_venues import TERMINAL_VENUES  # noqa: E402  (it needs Venue from here)

VENUES.update(TERMINAL_VENUES)  # the real-terminal backends: over the simulator, or a real demo account

from tests.conformance.mt5_module_venue import mtrobot_mt5_venue  # noqa: E402

VENUES["mtrobot-mt5"] = mtrobot_mt5_venue  # the drop-in MetaTrader5 module (mtrobot.mt5)


DEFAULT_BACKENDS = "sim-inprocess,sim,metatrader5-over-sim,mt5linux-over-sim,mtrobot-mt5"
"""The real-terminal backends run by default in front of the simulator; against a real (demo) account only
when named: ``MTROBOT_CONFORMANCE_BACKENDS=metatrader5`` or ``=mt5linux``."""


def selected_backends() -> list[str]:
    raw = os.environ.get("MTROBOT_CONFORMANCE_BACKENDS", DEFAULT_BACKENDS)
    return [name.strip() for name in raw.split(",") if name.strip()]
