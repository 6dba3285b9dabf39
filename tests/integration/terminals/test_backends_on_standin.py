"""Every interface function of both real-terminal backends, against the recording stand-in of MetaTrader5.

Each test runs twice: ``metatrader5`` (the stand-in in process, as the official package would be) and
``mt5linux`` (the stand-in in a bridge server process, reached over a real rpyc socket).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from mtrobot.broker import constants as mt5
from mtrobot.broker import structures as s
from mtrobot.broker.arrays import RATES_DTYPE, TICKS_DTYPE
from mtrobot.broker.retcodes import Reaction, last_error_code
from mtrobot.broker.terminal import TERMINAL_FUNCTIONS, Terminal
from tests.standin.fake_market import START_TIME
from tests.standin.fake_mt5 import wait_until

from .conftest import LOGIN, SERVER, Rig, make_rig

BUY = {"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1, "type": mt5.ORDER_TYPE_BUY,
       "type_filling": mt5.ORDER_FILLING_FOK, "magic": 4242, "comment": "mtr-abc123"}  # fmt: skip
H1 = mt5.TIMEFRAME_H1
HOUR = START_TIME - START_TIME % 3_600


async def exercise_every_function(t: Terminal) -> None:
    """Call each of the 29 functions once with valid arguments and check the shape of every answer."""
    assert await t.version() == (500, 5000, "01 Sep 2026")
    assert type(await t.account_info()) is s.AccountInfo
    assert type(await t.terminal_info()) is s.TerminalInfo
    assert await t.symbols_total() == 2
    symbols = await t.symbols_get("EUR*")
    assert (
        symbols is not None and [type(x) for x in symbols] == [s.SymbolInfo] and symbols[0].name == "EURUSD"
    )
    assert type(await t.symbol_info("USDJPY")) is s.SymbolInfo
    assert type(await t.symbol_info_tick("EURUSD")) is s.Tick
    assert await t.symbol_select("EURUSD", True) is True
    assert await t.order_calc_margin(mt5.ORDER_TYPE_BUY, "EURUSD", 1, 1.1) == pytest.approx(1100.0)
    assert await t.order_calc_profit(mt5.ORDER_TYPE_BUY, "EURUSD", 1.0, 1.1, 1.103) == pytest.approx(300.0)
    check = await t.order_check(BUY)
    assert type(check) is s.OrderCheckResult and type(check.request) is s.TradeRequest and check.retcode == 0
    sent = await t.order_send(BUY)
    assert type(sent) is s.OrderSendResult and sent.retcode == mt5.TRADE_RETCODE_DONE
    assert type(sent.request) is s.TradeRequest and sent.request.magic == 4242
    pending = {**BUY, "action": mt5.TRADE_ACTION_PENDING, "type": mt5.ORDER_TYPE_BUY_LIMIT, "price": 1.05}
    assert (await t.order_send(pending)).retcode == mt5.TRADE_RETCODE_DONE  # type: ignore[union-attr]
    assert await t.orders_total() == 1
    assert [type(o) for o in await t.orders_get(symbol="EURUSD") or ()] == [s.TradeOrder]
    assert await t.positions_total() == 1
    assert [p.ticket for p in await t.positions_get(group="*USD*") or ()] == [sent.order]
    window = WINDOW
    assert await t.history_orders_total(*window) == 1
    assert [o.ticket for o in await t.history_orders_get(*window) or ()] == [sent.order]
    assert await t.history_deals_total(*window) == 2  # the opening balance and the buy
    deals = await t.history_deals_get(ticket=sent.order)  # ticket= is the ORDER ticket here
    assert deals is not None and [d.ticket for d in deals] == [sent.deal] and type(deals[0]) is s.TradeDeal
    for rates in (
        await t.copy_rates_from("EURUSD", H1, START_TIME, 5),
        await t.copy_rates_from_pos("EURUSD", H1, 0, 5),
        await t.copy_rates_range("EURUSD", H1, HOUR - 4 * 3_600, HOUR),  # opens in [from, to]
    ):
        assert isinstance(rates, np.ndarray) and rates.dtype == RATES_DTYPE and len(rates) == 5
    for ticks in (
        await t.copy_ticks_from("EURUSD", START_TIME, 5, mt5.COPY_TICKS_ALL),
        await t.copy_ticks_range("EURUSD", START_TIME, START_TIME + 2, mt5.COPY_TICKS_ALL),
    ):
        assert isinstance(ticks, np.ndarray) and ticks.dtype == TICKS_DTYPE and len(ticks) == 5
    assert await t.symbol_info("NOPE") is None
    assert await t.last_error() == (-4, "Terminal: Not found")
    assert await t.login(LOGIN, password="master-pw", server=SERVER) is True
    await t.shutdown()


async def test_every_interface_function_reaches_the_module_and_answers_in_our_structures(rig: Rig) -> None:
    await rig.attach()
    await exercise_every_function(rig.terminal)
    assert set(TERMINAL_FUNCTIONS) <= set(rig.called())


async def test_values_arrive_field_for_field_as_the_module_gave_them(ready: Rig) -> None:
    sent = await ready.terminal.order_send(BUY)
    assert sent is not None
    ours = {
        "account_info": await ready.terminal.account_info(),
        "symbol_info": await ready.terminal.symbol_info("EURUSD"),
        "positions_get": (await ready.terminal.positions_get() or (None,))[0],
        "history_deals_get": (await ready.terminal.history_deals_get(position=sent.order) or (None,))[0],
    }
    theirs = {
        "account_info": ready.mt5.account_info(),
        "symbol_info": ready.mt5.symbol_info("EURUSD"),
        "positions_get": ready.mt5.positions_get()[0],
        "history_deals_get": ready.mt5.history_deals_get(position=sent.order)[0],
    }
    for name, value in ours.items():
        assert tuple(value) == tuple(theirs[name]), name  # tuple() copies a remote result by value
    rates = await ready.terminal.copy_rates_from_pos("EURUSD", H1, 0, 3)
    expected = ready.mt5.copy_rates_from_pos("EURUSD", H1, 0, 3)["close"].tolist()
    assert rates is not None and rates["close"].tolist() == list(expected)


async def test_an_aware_datetime_is_sent_as_epoch_seconds(ready: Rig) -> None:
    moment = datetime.fromtimestamp(START_TIME, tz=UTC)
    by_date = await ready.terminal.copy_rates_from("EURUSD", H1, moment, 3)
    by_int = await ready.terminal.copy_rates_from("EURUSD", H1, START_TIME, 3)
    assert by_date is not None and by_int is not None and by_date.tolist() == by_int.tolist()


async def test_a_call_before_initialize_fails_with_no_ipc_connection(rig: Rig) -> None:
    assert await rig.terminal.account_info() is None
    code, _ = await rig.terminal.last_error()
    assert code == -10004
    assert await rig.terminal.positions_total() == 0 and (await rig.terminal.last_error())[0] == -10004
    assert await rig.terminal.symbol_select("EURUSD", True) is False


async def test_a_wrong_password_is_refused_by_the_terminal_with_authorization_failed(rig: Rig) -> None:
    assert await rig.terminal.initialize(login=LOGIN, password="wrong", server=SERVER) is False
    assert await rig.terminal.last_error() == (-6, "Terminal: Authorization failed")


async def test_a_failed_call_returns_none_and_last_error_tells_why(ready: Rig) -> None:
    assert await ready.terminal.symbol_info_tick("NOPE") is None
    assert await ready.terminal.last_error() == (-4, "Terminal: Not found")
    assert await ready.terminal.copy_rates_from_pos("NOPE", H1, 0, 3) is None
    assert await ready.terminal.last_error() == (-1, "Terminal: Call failed")
    assert await ready.terminal.account_info() is not None
    assert await ready.terminal.last_error() == (1, "Success")


async def test_an_argument_of_the_wrong_type_is_refused_with_minus_2_and_certainly_not_sent(
    ready: Rig,
) -> None:
    assert (
        await ready.terminal.order_send({**BUY, "comment": "a comment far too long for the terminal"}) is None
    )
    code, description = await ready.terminal.last_error()
    assert (code, description) == (-2, 'Invalid "comment" argument')
    assert last_error_code(code).reaction_for("order_send") is Reaction.FATAL
    assert await ready.terminal.positions_total() == 0


async def test_an_integral_volume_is_refused_like_the_module_does_never_silently_converted(
    ready: Rig,
) -> None:
    assert await ready.terminal.order_send({**BUY, "volume": 1}) is None
    assert await ready.terminal.last_error() == (-2, 'Invalid "volume" argument')


async def test_algo_trading_off_comes_back_as_a_result_not_a_failure(ready: Rig) -> None:
    ready.mt5.standin_set_algo_trading(False)
    sent = await ready.terminal.order_send(BUY)
    assert sent is not None and sent.retcode == 10027 and sent.request_id == 0


WINDOW = (START_TIME - 7 * 86_400, START_TIME + 3_600)
VALID_CALLS: dict[str, Callable[[Terminal], Awaitable[Any]]] = {
    "initialize": lambda t: t.initialize(login=LOGIN, password="master-pw", server=SERVER),
    "login": lambda t: t.login(LOGIN, password="master-pw", server=SERVER),
    "version": lambda t: t.version(),
    "account_info": lambda t: t.account_info(),
    "terminal_info": lambda t: t.terminal_info(),
    "symbols_total": lambda t: t.symbols_total(),
    "symbols_get": lambda t: t.symbols_get(),
    "symbol_info": lambda t: t.symbol_info("EURUSD"),
    "symbol_info_tick": lambda t: t.symbol_info_tick("EURUSD"),
    "symbol_select": lambda t: t.symbol_select("EURUSD", True),
    "orders_total": lambda t: t.orders_total(),
    "orders_get": lambda t: t.orders_get(),
    "positions_total": lambda t: t.positions_total(),
    "positions_get": lambda t: t.positions_get(),
    "history_orders_total": lambda t: t.history_orders_total(*WINDOW),
    "history_orders_get": lambda t: t.history_orders_get(*WINDOW),
    "history_deals_total": lambda t: t.history_deals_total(*WINDOW),
    "history_deals_get": lambda t: t.history_deals_get(*WINDOW),
    "order_calc_margin": lambda t: t.order_calc_margin(mt5.ORDER_TYPE_BUY, "EURUSD", 0.1, 1.1),
    "order_calc_profit": lambda t: t.order_calc_profit(mt5.ORDER_TYPE_BUY, "EURUSD", 0.1, 1.1, 1.2),
    "order_check": lambda t: t.order_check(BUY),
    "order_send": lambda t: t.order_send(BUY),
    "copy_rates_from": lambda t: t.copy_rates_from("EURUSD", H1, START_TIME, 3),
    "copy_rates_from_pos": lambda t: t.copy_rates_from_pos("EURUSD", H1, 0, 3),
    "copy_rates_range": lambda t: t.copy_rates_range("EURUSD", H1, HOUR - 7_200, HOUR),
    "copy_ticks_from": lambda t: t.copy_ticks_from("EURUSD", START_TIME, 3, mt5.COPY_TICKS_ALL),
    "copy_ticks_range": lambda t: t.copy_ticks_range(
        "EURUSD", START_TIME, START_TIME + 1, mt5.COPY_TICKS_ALL
    ),
}
"""One valid call of every function the terminal forwards (``last_error`` is answered locally, and
``shutdown`` cannot fail)."""
FAILED = {"initialize": False, "login": False, "symbol_select": False, "symbols_total": 0, "orders_total": 0,
          "positions_total": 0, "history_orders_total": 0, "history_deals_total": 0}  # fmt: skip


async def expect_success(terminal: Terminal, function: str) -> None:
    value = await VALID_CALLS[function](terminal)
    assert value is not None and value is not False
    assert await terminal.last_error() == (1, "Success")  # a count of 0 is only trusted with this


def test_the_table_of_valid_calls_names_every_forwarded_function() -> None:
    assert set(VALID_CALLS) == set(TERMINAL_FUNCTIONS) - {"last_error", "shutdown"}


@pytest.mark.parametrize("function", sorted(VALID_CALLS))
async def test_a_terminal_that_disconnects_mid_call_surfaces_an_ipc_error_then_initialize_recovers(
    ready: Rig, function: str
) -> None:
    ready.mt5.standin_drop(function, -10002, "IPC recv failed")
    assert await VALID_CALLS[function](ready.terminal) == FAILED.get(function)
    assert await ready.terminal.last_error() == (-10002, "IPC recv failed")
    expected = Reaction.AMBIGUOUS if function == "order_send" else Reaction.RETRY
    assert last_error_code(-10002).reaction_for(function) is expected
    assert await ready.terminal.account_info() is None  # the link stays down ...
    assert (await ready.terminal.last_error())[0] == -10004
    await ready.attach()  # ... until the connector's reconnect path initializes again
    await expect_success(ready.terminal, function)


@pytest.mark.parametrize("function", sorted(VALID_CALLS))
async def test_every_function_returns_its_failure_value_and_the_terminals_reason(
    ready: Rig, function: str
) -> None:
    ready.mt5.standin_fail(function, -1, "Terminal: Call failed")
    assert await VALID_CALLS[function](ready.terminal) == FAILED.get(function)
    assert await ready.terminal.last_error() == (-1, "Terminal: Call failed")
    await expect_success(ready.terminal, function)  # the next one works again


async def test_order_send_lost_mid_call_is_ambiguous_and_the_order_is_found_after_reconnecting(
    ready: Rig,
) -> None:
    ready.mt5.standin_drop("order_send", -10002, "IPC recv failed")
    assert await ready.terminal.order_send(BUY) is None
    code, _ = await ready.terminal.last_error()
    assert last_error_code(code).reaction_for("order_send") is Reaction.AMBIGUOUS
    await ready.attach()
    found = await ready.terminal.positions_get(symbol="EURUSD")
    assert found is not None and [(p.magic, p.comment) for p in found] == [(4242, "mtr-abc123")]


@pytest.mark.parametrize(("code", "reaction"), [(-10001, Reaction.AMBIGUOUS), (-10005, Reaction.AMBIGUOUS),
                                                (-10004, Reaction.RETRY), (-2, Reaction.FATAL)])  # fmt: skip
async def test_order_send_none_keeps_the_code_that_decides_between_not_sent_and_maybe_sent(
    ready: Rig, code: int, reaction: Reaction
) -> None:
    ready.mt5.standin_fail("order_send", code, "scripted")
    assert await ready.terminal.order_send(BUY) is None
    assert await ready.terminal.last_error() == (code, "scripted")
    assert last_error_code(code).reaction_for("order_send") is reaction


async def test_concurrent_callers_are_served_one_at_a_time_off_the_event_loop(ready: Rig) -> None:
    jobs: list[Any] = []
    for _ in range(10):
        jobs += [ready.terminal.account_info(), ready.terminal.symbol_info_tick("EURUSD"),
                 ready.terminal.positions_get()]  # fmt: skip
    results = await asyncio.gather(*jobs)
    assert all(r is not None for r in results)
    assert ready.mt5.standin_max_inflight() == 1
    module_threads = {thread for _name, thread in ready.mt5.standin_calls()}
    assert len(module_threads) == 1
    assert ready.terminal.worker_thread_id not in (None, threading.get_ident())
    if ready.backend == "metatrader5":  # in process: the module ran on exactly the terminal's worker thread
        assert module_threads == {ready.terminal.worker_thread_id}


async def test_the_event_loop_keeps_running_while_the_terminal_blocks_in_a_call(ready: Rig) -> None:
    ready.mt5.standin_block("account_info")
    task = asyncio.create_task(ready.terminal.account_info())
    assert await asyncio.to_thread(ready.mt5.standin_wait_entered, "account_info", 10)
    beats = 0
    for _ in range(5):
        await asyncio.sleep(0.01)
        beats += 1
    assert beats == 5 and not task.done()
    ready.mt5.standin_release("account_info")
    info = await asyncio.wait_for(task, 10)
    assert info is not None and info.login == LOGIN


async def test_a_call_that_never_answers_times_out_as_ambiguous_and_later_calls_fail_fast(
    bridge: Any,
) -> None:
    for backend in ("metatrader5", "mt5linux"):
        rig = make_rig(backend, bridge, call_timeout=0.3)
        await rig.attach()
        rig.mt5.standin_block("order_send")
        assert await rig.terminal.order_send(BUY) is None
        code, _ = await rig.terminal.last_error()
        assert code == -10005 and last_error_code(code).reaction_for("order_send") is Reaction.AMBIGUOUS
        assert await rig.terminal.positions_get() is None  # not queued behind the hung call
        assert (await rig.terminal.last_error())[0] == -10004
        rig.mt5.standin_release("order_send")
        assert await rig.terminal.wait_idle(10)
        assert await asyncio.to_thread(wait_until, lambda r=rig: r.mt5.standin_inflight() == 0)  # type: ignore[misc]
        await rig.attach()
        found = await rig.terminal.positions_get()
        assert found is not None and len(found) == 1, backend  # the hung send did execute: reconcile finds it
        await rig.terminal.aclose()
