"""The connector's BrokerLink over a real-terminal backend: a failed call keeps its own last_error."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mtrobot.broker.backends import open_terminal
from mtrobot.connector.audit import AuditTrail
from mtrobot.connector.link import BrokerLink
from tests.standin.fake_mt5 import FakeMT5

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
