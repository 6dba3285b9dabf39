"""The connector over a real-terminal backend: calls keep their own last_error; the hub names the terminal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from mtrobot.broker.backends import open_terminal
from mtrobot.bus.server import free_port
from mtrobot.connector.audit import AuditTrail
from mtrobot.connector.link import BrokerLink
from mtrobot.connector.options import ConnectorOptions, OptionsHolder, options_from_hub
from mtrobot.connector.runner import terminal_factory
from mtrobot.hub.schemas import ConnectorConfig
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


async def test_no_hub_document_can_point_the_connector_at_another_terminal(
    bridge: BridgeProcess, tmp_path: Path
) -> None:
    """The hub used to name the bridge: a configuration change could send the password elsewhere."""
    bridge.mt5.standin_reset()
    here = {"host": "127.0.0.1", "port": bridge.port}
    holder = OptionsHolder(
        ConnectorOptions(backend="mt5linux", terminal_options=here, server=SERVER, login=LOGIN)
    )
    factory = terminal_factory("mt5linux", Settings(data_dir=tmp_path), lambda: holder.current)
    with pytest.raises(ValidationError) as refused:
        ConnectorConfig.model_validate(
            {
                "mt5_connection": {
                    "backend": "mt5linux",
                    "bridge_port": free_port(),
                    "server": "Evil",
                    "login": 6,
                }
            }
        )
    assert {e["loc"][-1] for e in refused.value.errors()} == {"backend", "bridge_port", "server", "login"}
    holder.replace(options_from_hub(ConnectorConfig.model_validate({"order_settings": {"max_retries": 1}}),
                                    holder.current))  # fmt: skip
    assert holder.current.terminal_options == here and holder.current.server == SERVER
    assert holder.current.login == LOGIN and holder.current.max_retries == 1
    after = factory()
    assert await after.initialize(login=LOGIN, password=PASSWORD, server=SERVER) is True
    await after.shutdown()
