"""Connecting, logging in and out, permissions, and what a dead link looks like."""

from __future__ import annotations

import pytest

from mtrobot.broker import constants as mt5
from mtrobot.broker.terminal import TERMINAL_FUNCTIONS
from tests.conformance.conftest import need_admin
from tests.conformance.helpers import market, send_market
from tests.conformance.venues import Venue


async def test_initialize_logs_in_and_reports_success(venue: Venue) -> None:
    term = venue.terminal()
    assert await term.initialize(login=venue.login, password=venue.password, server=venue.server) is True
    assert await term.last_error() == (mt5.RES_S_OK, "Success")
    info = await term.account_info()
    assert info is not None and info.login == venue.login and info.server == venue.server
    assert info.trade_allowed is True
    version = await term.version()
    assert version is not None and len(version) == 3 and version[0] >= 500


async def test_a_wrong_password_is_an_authorization_failure(venue: Venue) -> None:
    term = venue.terminal()
    assert await term.initialize(login=venue.login, password="wrong-password", server=venue.server) is False
    code, _ = await term.last_error()
    assert code == mt5.RES_E_AUTH_FAILED


async def test_an_unknown_server_times_out_rather_than_refusing(venue: Venue) -> None:
    need_admin(venue)
    term = venue.terminal()
    assert await term.initialize(login=venue.login, password=venue.password, server="Nowhere-Demo") is False
    assert (await term.last_error())[0] == mt5.RES_E_INTERNAL_FAIL_TIMEOUT


async def test_every_call_before_initialize_fails_with_no_ipc_connection(venue: Venue) -> None:
    term = venue.terminal()
    assert await term.account_info() is None
    assert await term.last_error() == (mt5.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
    assert await term.positions_total() == 0
    assert (await term.last_error())[0] == mt5.RES_E_INTERNAL_FAIL_CONNECT
    assert await term.order_send({"action": mt5.TRADE_ACTION_DEAL}) is None


async def test_shutdown_closes_the_link(venue: Venue) -> None:
    term = await venue.connected()
    await term.shutdown()
    assert await term.terminal_info() is None
    assert (await term.last_error())[0] == mt5.RES_E_INTERNAL_FAIL_CONNECT


async def test_login_switches_between_master_and_investor_access(venue: Venue) -> None:
    term = await venue.connected()
    assert venue.investor_password is not None
    assert await term.login(venue.login, password=venue.investor_password, server=venue.server) is True
    info = await term.account_info()
    assert info is not None and info.trade_allowed is False
    assert await term.login(venue.login, password=venue.password, server=venue.server) is True
    info = await term.account_info()
    assert info is not None and info.trade_allowed is True


async def test_an_investor_login_reads_everything_but_cannot_trade(venue: Venue) -> None:
    if venue.investor_password is None:
        pytest.skip("no investor password for this venue")
    term = await venue.connected(investor=True)
    assert (await term.account_info()).trade_allowed is False  # type: ignore[union-attr]
    assert await term.positions_get() == ()
    assert await term.symbol_info_tick(venue.symbol) is not None
    request = await market(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    check = await term.order_check(request)
    assert check is not None and check.retcode == mt5.TRADE_RETCODE_TRADE_DISABLED
    result = await term.order_send(request)
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_TRADE_DISABLED
    assert await term.positions_total() == 0


async def test_algo_trading_off_in_the_terminal_refuses_orders_before_the_server(venue: Venue) -> None:
    need_admin(venue)
    term = await venue.connected(algo_trading=False)
    info = await term.terminal_info()
    assert info is not None and info.trade_allowed is False and info.connected is True
    result = await send_market(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    assert result.retcode == mt5.TRADE_RETCODE_CLIENT_DISABLES_AT and result.request_id == 0
    assert result.comment == "AutoTrading disabled by client"


async def test_python_api_trading_disabled_returns_none_with_minus_8(venue: Venue) -> None:
    need_admin(venue)
    term = await venue.connected(tradeapi_disabled=True)
    assert (await term.terminal_info()).tradeapi_disabled is True  # type: ignore[union-attr]
    assert await term.order_send(await market(term, venue.symbol, mt5.ORDER_TYPE_BUY)) is None
    assert (await term.last_error())[0] == mt5.RES_E_AUTO_TRADING_DISABLED


async def test_request_ids_count_up_per_session(venue: Venue) -> None:
    term = await venue.connected()
    first = await send_market(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    second = await send_market(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    assert second.request_id == first.request_id + 1


def test_the_terminal_offers_every_function_and_nothing_that_moves_money(venue: Venue) -> None:
    term = venue.terminal()
    for name in TERMINAL_FUNCTIONS:
        assert callable(getattr(term, name)), name
    public = {n for n in dir(term) if not n.startswith("_")}
    assert not {n for n in public if any(w in n for w in ("deposit", "withdraw", "transfer", "password"))}


def test_the_suite_exercises_every_terminal_function() -> None:
    from pathlib import Path

    here = Path(__file__).parent
    source = "".join(p.read_text() for p in here.glob("test_*.py") if p.name != "test_real_terminals.py")
    source += (here / "helpers.py").read_text()
    missing = [name for name in TERMINAL_FUNCTIONS if f".{name}(" not in source]
    assert missing == []
