"""What only the mt5linux bridge has: a socket and a server process that can go away, and a remote Python."""

from __future__ import annotations

import pytest
import structlog

from mtrobot.broker import constants as mt5
from mtrobot.broker.backends import open_terminal
from mtrobot.broker.retcodes import Reaction, last_error_code
from mtrobot.broker.structures import TradeOrder, TradePosition
from mtrobot.bus.server import free_port
from tests.standin.bridge_server import running_bridge

from .conftest import LOGIN, PASSWORD, SERVER
from .test_backends_on_standin import BUY


async def test_a_bridge_that_is_not_running_is_no_ipc_connection_and_retriable() -> None:
    terminal = open_terminal("mt5linux", host="127.0.0.1", port=free_port(), connect_timeout=2)
    with structlog.testing.capture_logs() as logs:
        assert await terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER) is False
    code, description = await terminal.last_error()
    assert (code, description) == (-10004, "No IPC connection")  # the module's own words ...
    assert any("cannot be reached" in entry.get("detail", "") for entry in logs)  # ... the story in the log
    assert last_error_code(code).reaction is Reaction.RETRY
    await terminal.aclose()


async def test_the_bridge_dying_mid_send_is_ambiguous_and_a_restarted_bridge_is_reattached() -> None:
    port = free_port()
    terminal = open_terminal("mt5linux", host="127.0.0.1", port=port)
    with running_bridge(port) as bridge:
        assert await terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
        bridge.mt5.standin_crash("order_send")
        with structlog.testing.capture_logs() as logs:
            assert await terminal.order_send(BUY) is None
        code, description = await terminal.last_error()
        assert (code, description) == (-10002, "IPC recv failed")
        assert any("lost during order_send" in entry.get("detail", "") for entry in logs)
        assert last_error_code(code).reaction_for("order_send") is Reaction.AMBIGUOUS
        assert bridge.process.wait(timeout=10) == 17  # the server process really died mid-call
    assert await terminal.positions_get() is None
    assert (await terminal.last_error())[0] == -10004
    with running_bridge(port):  # the operator (or systemd) restarts it on the same port
        assert await terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
        assert await terminal.positions_get() == ()
    await terminal.aclose()


async def test_fields_land_by_name_even_from_a_bridge_with_mt5linux_wrong_layouts() -> None:
    with running_bridge(field_order="mt5linux") as bridge:
        terminal = open_terminal("mt5linux", host="127.0.0.1", port=bridge.port)
        assert await terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
        sent = await terminal.order_send(BUY)
        assert sent is not None and sent.retcode == mt5.TRADE_RETCODE_DONE
        raw = bridge.mt5.history_orders_get(ticket=sent.order)[0]
        assert raw._fields.index("volume_current") < raw._fields.index("volume_initial")  # the wrong layout
        (order,) = await terminal.history_orders_get(ticket=sent.order) or ()
        assert type(order) is TradeOrder and (order.volume_initial, order.volume_current) == (0.1, 0.0)
        (position,) = await terminal.positions_get() or ()
        assert (
            type(position) is TradePosition and position.volume == 0.1 and position.identifier == sent.order
        )
        assert 999_999_999 not in position  # the extra mt5linux field did not leak in
        await terminal.aclose()


async def test_a_bridge_python_without_metatrader5_is_a_configuration_error() -> None:
    with running_bridge(with_mt5=False) as bridge:
        terminal = open_terminal("mt5linux", host="127.0.0.1", port=bridge.port)
        assert await terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER) is False
        code, description = await terminal.last_error()
        assert code == -10003 and "cannot run MetaTrader5" in description
        assert last_error_code(code).reaction is Reaction.FATAL
        await terminal.aclose()


@pytest.mark.parametrize("port", [0, 70000, "18812"])
def test_a_bridge_port_must_be_a_tcp_port_number(port: object) -> None:
    with pytest.raises(ValueError, match="port"):
        open_terminal("mt5linux", port=port)
