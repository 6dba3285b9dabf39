"""Link faults as a real terminal shows them: dropped connections, lost answers, latency, idle disconnects,
maintenance. These need the simulator's admin channel."""

from __future__ import annotations

import asyncio
import time

import pytest

from mtrobot.broker import constants as mt5
from mtrobot.broker.terminal import Terminal
from tests.conformance.conftest import need_admin
from tests.conformance.helpers import market, open_position
from tests.conformance.venues import Venue

LINK_DOWN = (mt5.RES_E_INTERNAL_FAIL_CONNECT, mt5.RES_E_INTERNAL_FAIL_RECEIVE)
"""A call racing with the server closing the link may see the close before sending (-10004) or after (-10002,
which for order_send means "look it up"): both are a dead link."""


async def test_a_dropped_connection_fails_calls_until_initialize_again(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    assert await admin.drop_connections(server=venue.server) == 1  # type: ignore[attr-defined]
    assert await term.account_info() is None
    assert (await term.last_error())[0] in LINK_DOWN
    assert await term.initialize(login=venue.login, password=venue.password, server=venue.server)
    assert await term.account_info() is not None


async def test_a_lost_answer_means_the_order_may_have_executed(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.lose_replies(server=venue.server, n=1, mode="drop")  # type: ignore[attr-defined]
    request = await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, magic=777)
    assert await term.order_send(request) is None
    assert await term.last_error() == (mt5.RES_E_INTERNAL_FAIL_RECEIVE, "IPC recv failed")
    assert (
        await term.positions_total() == 0 and (await term.last_error())[0] == mt5.RES_E_INTERNAL_FAIL_CONNECT
    )
    assert await term.initialize(login=venue.login, password=venue.password, server=venue.server)
    positions = await term.positions_get(symbol=venue.symbol)
    assert positions is not None and [p.magic for p in positions] == [
        777
    ]  # it did execute: look before resending


async def test_an_answer_that_never_comes_is_an_ipc_timeout(venue: Venue) -> None:
    admin = need_admin(venue)
    term = await venue.connected(call_timeout=1.0)
    await admin.lose_replies(server=venue.server, n=1, mode="timeout")  # type: ignore[attr-defined]
    assert await term.order_send(await market(term, venue.symbol, mt5.ORDER_TYPE_BUY)) is None
    assert (await term.last_error())[0] == mt5.RES_E_INTERNAL_FAIL_TIMEOUT
    assert await term.positions_total() == 1


async def test_latency_delays_every_answer(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.set_latency(server=venue.server, ms=150)  # type: ignore[attr-defined]
    started = time.monotonic()
    assert await term.account_info() is not None
    assert time.monotonic() - started >= 0.14
    info = await term.terminal_info()
    assert info is not None and info.ping_last >= 150_000


async def test_an_idle_session_is_disconnected(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.update_server(server=venue.server, inactivity_timeout_s=0.5)  # type: ignore[attr-defined]
    assert await term.account_info() is not None
    await asyncio.sleep(1.0)  # the stimulus: 1 s without a request
    assert await term.account_info() is None
    assert (await term.last_error())[0] in LINK_DOWN


async def test_maintenance_drops_sessions_refuses_logins_then_ends(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.start_maintenance(server=venue.server, seconds=300)  # type: ignore[attr-defined]
    assert await term.account_info() is None
    assert not await term.initialize(login=venue.login, password=venue.password, server=venue.server)
    assert (await term.last_error())[0] == mt5.RES_E_INTERNAL_FAIL_TIMEOUT
    await admin.advance_clock(seconds=301)  # type: ignore[attr-defined]
    assert await term.initialize(login=venue.login, password=venue.password, server=venue.server)


async def test_frozen_prices_stop_moving(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.freeze_prices(server=venue.server)  # type: ignore[attr-defined]
    before = await term.symbol_info_tick(venue.symbol)
    await admin.advance_clock(seconds=60)  # type: ignore[attr-defined]
    assert await term.symbol_info_tick(venue.symbol) == before


async def test_a_dropped_server_does_not_disturb_another_server(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    other = "Northwind-Live" if venue.server != "Northwind-Live" else "MTRobot-Demo"
    login = await admin.create_account(server=other, password="Other-pass-1", investor_password="Other-inv-1")  # type: ignore[attr-defined]
    second = venue.terminal()
    assert await second.initialize(login=login, password="Other-pass-1", server=other)
    await admin.drop_connections(server=other)  # type: ignore[attr-defined]
    assert await second.account_info() is None
    await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    assert await term.positions_total() == 1


@pytest.mark.parametrize("amount", [500.0, -250.0])
async def test_back_office_balance_operations_show_as_balance_deals(
    venue: Venue, term: Terminal, amount: float
) -> None:
    admin = need_admin(venue)
    before = await term.account_info()
    await admin.balance_operation(login=venue.login, amount=amount)  # type: ignore[attr-defined]
    after = await term.account_info()
    assert (
        before is not None and after is not None and after.balance == pytest.approx(before.balance + amount)
    )
    deals = await term.history_deals_get(0, 4_000_000_000)
    assert deals is not None and deals[-1].type == mt5.DEAL_TYPE_BALANCE and deals[-1].profit == amount


async def test_an_ambiguous_retcode_can_hide_an_executed_order(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.reject_next(server=venue.server, n=1, retcode=mt5.TRADE_RETCODE_TIMEOUT, execute=True)  # type: ignore[attr-defined]
    result = await term.order_send(await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, magic=99))
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_TIMEOUT and result.deal == 0
    positions = await term.positions_get(symbol=venue.symbol)
    assert positions is not None and [p.magic for p in positions] == [99]
