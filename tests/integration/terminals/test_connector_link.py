"""The connector over a real-terminal backend: calls keep their own last_error; the hub names the terminal."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mtrobot.broker.backends import open_terminal
from mtrobot.bus.server import free_port
from mtrobot.connector.audit import AuditTrail
from mtrobot.connector.link import BrokerLink
from mtrobot.connector.options import ConnectorOptions, OptionsHolder, options_from_hub
from mtrobot.connector.runner import terminal_factory
from mtrobot.hub.schemas import ConnectorConfig, MT5Connection
from mtrobot.settings import Settings
from tests.standin.bridge_server import BridgeProcess
from tests.standin.fake_mt5 import FakeMT5

from .conftest import LOGIN, PASSWORD, SERVER
from .test_backends_on_standin import BUY


async def test_a_failed_send_keeps_its_ipc_error_while_other_calls_succeed_around_it(tmp_path: Path) -> None:
    fake = FakeMT5()
    terminal = open_terminal("metatrader5", module=fake)
    assert await terminal.initialize()
    link = BrokerLink(terminal, AuditTrail("acc-1", tmp_path, {}), 5.0)
    for _ in range(30):
        fake.standin_fail("order_send", -10002, "IPC recv failed")
        reads = [link.call("symbol_info_tick", "EURUSD") for _ in range(4)]
        sent, *ticks = await asyncio.gather(link.call("order_send", BUY), *reads)
        assert sent.value is None and sent.error == (-10002, "IPC recv failed")  # never "(1, 'Success')"
        assert all(tick.ok for tick in ticks)


async def test_a_reconnect_opens_the_terminal_the_hub_names_now(
    bridge: BridgeProcess, tmp_path: Path
) -> None:
    bridge.mt5.standin_reset()
    nowhere = {"host": "127.0.0.1", "port": free_port()}
    holder = OptionsHolder(ConnectorOptions(backend="mt5linux", terminal_options=nowhere))
    factory = terminal_factory("mt5linux", Settings(data_dir=tmp_path), lambda: holder.current)
    before = factory()
    assert await before.initialize(login=LOGIN, password=PASSWORD, server=SERVER) is False
    hub = ConnectorConfig(mt5_connection=MT5Connection(backend="mt5linux", bridge_port=bridge.port))
    holder.replace(options_from_hub(hub, holder.current))  # what the connector does on a hub change
    after = factory()
    assert await after.initialize(login=LOGIN, password=PASSWORD, server=SERVER) is True
    await after.shutdown()
