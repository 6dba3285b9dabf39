"""Conformance venues of the real-terminal backends (``metatrader5`` and ``mt5linux``).

- ``metatrader5-over-sim``: the ``metatrader5`` backend in process, its "official module" being the
  simulator dressed as ``MetaTrader5`` (tests/standin/sim_module.py): worker thread, argument shaping and
  result copying are the real backend code; the admin channel is the simulator's, in process.
- ``mt5linux-over-sim``: the ``mt5linux`` backend over a real rpyc socket to a bridge server process whose
  ``MetaTrader5`` is the simulator (reached there over the simbroker's TCP protocol); admin over TCP.
- ``metatrader5`` / ``mt5linux``: a real terminal and account, from ``MTROBOT_MT5_LOGIN``,
  ``MTROBOT_MT5_PASSWORD``, ``MTROBOT_MT5_SERVER`` (plus ``MTROBOT_MT5_INVESTOR_PASSWORD``,
  ``MTROBOT_MT5_SYMBOL``, ``MTROBOT_MT5_TERMINAL_PATH`` or ``MTROBOT_MT5_BRIDGE=host:port``). The suite
  trades, so these run on **demo accounts only**; without the variables they skip with the reason.

Select them with ``MTROBOT_CONFORMANCE_BACKENDS``, e.g. ``MTROBOT_CONFORMANCE_BACKENDS=metatrader5 pytest
tests/conformance`` on a Windows machine next to a demo terminal.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mtrobot.broker import constants as mt5
from mtrobot.broker.backends import open_terminal
from mtrobot.broker.conformance import credentials_from_env, requirements
from mtrobot.sim.admin import LocalAdmin, SimAdmin
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.clock import VirtualClock
from mtrobot.sim.tcp import SimServer
from tests.conformance.venues import HEDGING, INVESTOR, MASTER, WEDNESDAY_NOON, Venue, VenueFactory
from tests.standin.bridge_server import BridgeProcess, running_bridge
from tests.standin.sim_module import SimModule

OUR_GRACE_S = 5.0
"""Our call timeout sits above the simulator terminal's, so a timeout is the simulator's to report."""


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Options for our backend (its call timeout) and for the simulator's terminal (the terminal switches)."""
    ours = {"call_timeout": options["call_timeout"] + OUR_GRACE_S} if "call_timeout" in options else {}
    return ours, options


@contextlib.asynccontextmanager
async def metatrader5_over_sim_venue(server: str) -> AsyncIterator[Venue]:
    broker = SimBroker(clock=VirtualClock(WEDNESDAY_NOON))
    admin = LocalAdmin(broker)
    login = await admin.create_account(server=server, password=MASTER, investor_password=INVESTOR)
    loop = asyncio.get_running_loop()

    def make(**options: Any) -> Any:
        ours, sim = split_options(options)
        module = SimModule(lambda: open_terminal("sim-inprocess", broker=broker, **sim), loop)
        return open_terminal("metatrader5", module=module, **ours)

    hedging = server == HEDGING
    venue = Venue("metatrader5-over-sim", server, login, MASTER, INVESTOR, make, admin, hedging=hedging)
    try:
        yield venue
    finally:
        await venue.close()


_bridges: contextlib.ExitStack = contextlib.ExitStack()
atexit.register(_bridges.close)
_sim_bridge: list[BridgeProcess] = []


def sim_bridge() -> BridgeProcess:
    """One bridge server process (simulator mode) for the whole run, started on first use."""
    if not _sim_bridge or _sim_bridge[0].process.poll() is not None:
        _sim_bridge[:] = [_bridges.enter_context(running_bridge(module="sim"))]
    return _sim_bridge[0]


@contextlib.asynccontextmanager
async def mt5linux_over_sim_venue(server: str) -> AsyncIterator[Venue]:
    bridge = sim_bridge()
    broker = SimBroker(clock=VirtualClock(WEDNESDAY_NOON))
    tcp = SimServer(broker, tick_period_s=None)
    port = await tcp.start()
    admin = SimAdmin("127.0.0.1", port)
    login = await admin.create_account(server=server, password=MASTER, investor_password=INVESTOR)

    def make(**options: Any) -> Any:
        ours, sim = split_options(options)
        bridge.mt5.standin_target(port, tuple(sim.items()))  # the next bridge session's simbroker
        return open_terminal("mt5linux", port=bridge.port, **ours)

    hedging = server == HEDGING
    venue = Venue("mt5linux-over-sim", server, login, MASTER, INVESTOR, make, admin, hedging=hedging)
    try:
        yield venue
    finally:
        await venue.close()
        await tcp.stop()


def real_terminal_options(backend: str) -> dict[str, Any]:
    """Where the real terminal is, or a skip naming what is missing."""
    missing = [need.name for need in requirements(backend) if need.satisfied is False]
    if backend == "mt5linux" and not os.environ.get("MTROBOT_MT5_BRIDGE"):
        missing.append("MTROBOT_MT5_BRIDGE (host:port of the mt5linux server)")
    if missing:
        pytest.skip(f"no real {backend} terminal: set {', '.join(missing)}")
    if backend == "metatrader5":
        return {"path": os.environ.get("MTROBOT_MT5_TERMINAL_PATH") or None}
    host, _, port = os.environ["MTROBOT_MT5_BRIDGE"].rpartition(":")
    return {"host": host or "127.0.0.1", "port": int(port)}


def real_venue(backend: str) -> VenueFactory:
    @contextlib.asynccontextmanager
    async def factory(server: str) -> AsyncIterator[Venue]:
        options = real_terminal_options(backend)
        credentials = credentials_from_env()
        assert credentials is not None
        password = credentials.password.get_secret_value()
        probe = open_terminal(backend, **options)
        ok = await probe.initialize(login=credentials.login, password=password, server=credentials.server)
        account = await probe.account_info() if ok else None
        error = await probe.last_error()
        await probe.shutdown()
        assert account is not None, f"cannot log in to {credentials.server}: {error}"
        if account.trade_mode != mt5.ACCOUNT_TRADE_MODE_DEMO:
            pytest.skip(
                "the conformance suite trades: demo accounts only (use the read-only `mtrobot conformance`)"
            )
        venue = Venue(
            backend, credentials.server, credentials.login, password,
            os.environ.get("MTROBOT_MT5_INVESTOR_PASSWORD") or None,
            lambda **o: open_terminal(backend, **options, **split_options(o)[0]), None,
            symbol=os.environ.get("MTROBOT_MT5_SYMBOL", "EURUSD"),
            hedging=account.margin_mode == mt5.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,
        )  # fmt: skip
        try:
            yield venue
        finally:
            await venue.close()

    return factory


TERMINAL_VENUES: dict[str, VenueFactory] = {
    "metatrader5-over-sim": metatrader5_over_sim_venue,
    "mt5linux-over-sim": mt5linux_over_sim_venue,
    "metatrader5": real_venue("metatrader5"),
    "mt5linux": real_venue("mt5linux"),
}
