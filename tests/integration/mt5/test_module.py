"""``mtrobot.mt5`` through every function of MT5_REFERENCE.md section 1, checked against the reference's
tables (tests/unit/mt5/reference.py): types, field names and order, codes and texts."""

from __future__ import annotations

import datetime as dt
import os
import pickle
from typing import Any

import numpy as np
import pytest

import mtrobot.mt5 as mt5
from mtrobot.mt5.target import Simulator
from tests.unit.mt5 import reference as ref

pytestmark = pytest.mark.usefixtures("module")

KINDS = {"int": int, "float": float, "bool": bool, "str": str}
ACCOUNT_KINDS = ["int"] * 5 + ["bool"] * 2 + ["int"] * 2 + ["bool"] + ["float"] * 14 + ["str"] * 4
TICK_KINDS = ["int", "float", "float", "float", "int", "int", "int", "float"]
POSITION_KINDS = ["int"] * 9 + ["float"] * 7 + ["str"] * 3
DEAL_KINDS = ["int"] * 9 + ["float"] * 6 + ["str"] * 3
ORDER_KINDS = ["int"] * 14 + ["float"] * 7 + ["str"] * 3


def kinds_match(value: tuple[Any, ...], kinds: list[str]) -> bool:
    return all(type(v) is KINDS[k] for v, k in zip(value, kinds, strict=True))


def buy(volume: float = 0.1, **extra: Any) -> Any:
    tick = mt5.symbol_info_tick("EURUSD")
    request = {
        "action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": volume, "type": mt5.ORDER_TYPE_BUY,
        "price": tick.ask, "deviation": 10, "magic": 77, "comment": "test buy",
    } | extra  # fmt: skip
    return mt5.order_send(request)


def test_before_initialize_every_call_fails_with_no_ipc_connection() -> None:
    assert mt5.account_info() is None
    assert mt5.last_error() == ref.NO_IPC
    assert mt5.symbol_select("EURUSD", True) is False
    assert mt5.positions_get() is None
    assert mt5.last_error() == ref.NO_IPC


def test_initialize_without_credentials_opens_a_demo_account_and_reuses_it() -> None:
    assert mt5.initialize() is True
    assert mt5.last_error() == ref.SUCCESS
    account = mt5.account_info()
    assert isinstance(account, mt5.AccountInfo)
    assert kinds_match(account, ACCOUNT_KINDS)
    assert account.trade_mode == mt5.ACCOUNT_TRADE_MODE_DEMO and account.balance == 10_000.0
    mt5.shutdown()
    assert mt5.account_info() is None and mt5.last_error() == ref.NO_IPC
    assert mt5.initialize() is True  # shutdown closed the link only: the same account again
    assert mt5.account_info().login == account.login


def test_initialize_with_a_wrong_password_or_argument_type_is_refused() -> None:
    assert mt5.initialize(login=123, password="wrong-pass", server="MTRobot-Demo") is False
    assert mt5.last_error() == ref.AUTH_FAILED
    assert mt5.initialize(login="123") is False
    assert mt5.last_error() == (-2, 'Invalid "login" argument')
    assert mt5.initialize(timeout="x") is False
    assert mt5.last_error() == (-2, 'Invalid "timeout" argument')


def test_initialize_with_explicit_credentials(sim: Simulator) -> None:
    assert sim.admin is not None
    import asyncio

    login = asyncio.run(
        sim.admin.create_account(
            server="Northwind-Live", password="Master-pass-1", investor_password="Inv-pass-12"
        )
    )
    assert mt5.initialize(login=login, password="Master-pass-1", server="Northwind-Live", timeout=5000)
    account = mt5.account_info()
    assert account.login == login and account.margin_mode == mt5.ACCOUNT_MARGIN_MODE_RETAIL_NETTING


def test_version_terminal_info_and_its_folders() -> None:
    mt5.initialize()
    version = mt5.version()
    assert isinstance(version, tuple) and [type(v) for v in version] == [int, int, str]
    info = mt5.terminal_info()
    assert isinstance(info, mt5.TerminalInfo) and info.connected and info.trade_allowed
    assert os.path.isdir(info.data_path) and os.path.isdir(info.commondata_path)
    assert os.path.isdir(os.path.join(info.data_path, "MQL5", "Files"))


def test_symbols_and_the_group_mask_grammar() -> None:
    mt5.initialize()
    total = mt5.symbols_total()
    everything = mt5.symbols_get()
    assert type(total) is int and total == len(everything) and total >= 5
    assert all(isinstance(s, mt5.SymbolInfo) for s in everything)
    names = {s.name for s in everything}
    no_usd = {s.name for s in mt5.symbols_get("*,!*USD*")}
    assert no_usd == {n for n in names if "USD" not in n}
    assert {s.name for s in mt5.symbols_get(group="EUR*")} == {n for n in names if n.startswith("EUR")}
    assert mt5.symbols_get("!*USD*,*") == everything  # left to right: the later inclusion wins
    assert mt5.symbol_info("NOSUCH") is None and mt5.last_error()[0] == mt5.RES_E_NOT_FOUND
    info = mt5.symbol_info("EURUSD")
    assert info.name == "EURUSD" and info.digits == 5 and info.point == 1e-05
    assert mt5.symbol_select("EURUSD", True) is True
    tick = mt5.symbol_info_tick("EURUSD")
    assert isinstance(tick, mt5.Tick) and kinds_match(tick, TICK_KINDS) and tick.ask >= tick.bid > 0


def test_wrong_argument_shapes_answer_none_and_the_binding_texts() -> None:
    mt5.initialize()
    assert mt5.positions_get("EURUSD") is None
    assert mt5.last_error() == (-2, "Unnamed arguments not allowed")
    assert mt5.symbol_info() is None
    assert mt5.last_error() == (-2, "Invalid number of arguments")
    assert mt5.symbol_info(42) is None
    assert mt5.last_error() == (-2, "Invalid 1st unnamed argument")
    assert mt5.orders_get(bogus=1) is None
    assert mt5.last_error() == (-2, 'Invalid "bogus" argument')


def test_a_market_position_with_sl_tp_then_closed_by_ticket() -> None:
    mt5.initialize()
    tick = mt5.symbol_info_tick("EURUSD")
    opened = buy(sl=round(tick.bid - 0.005, 5), tp=round(tick.bid + 0.005, 5))
    assert isinstance(opened, mt5.OrderSendResult)
    assert opened.retcode == mt5.TRADE_RETCODE_DONE and opened.comment == "Request executed"
    assert isinstance(opened.request, mt5.TradeRequest) and opened.request.volume == 0.1
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(opened)  # like the package's C types, which RPC bridges trip over
    assert list(opened.request._asdict()) == list(ref.FIELDS["TradeRequest"])
    (position,) = mt5.positions_get(ticket=opened.order)
    assert isinstance(position, mt5.TradePosition) and kinds_match(position, POSITION_KINDS)
    assert position.sl == round(tick.bid - 0.005, 5) and position.magic == 77
    assert mt5.positions_total() == 1
    close = {
        "action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1, "type": mt5.ORDER_TYPE_SELL,
        "position": position.ticket, "price": mt5.symbol_info_tick("EURUSD").bid, "deviation": 10,
    }  # fmt: skip
    closed = mt5.order_send(close)
    assert closed.retcode == mt5.TRADE_RETCODE_DONE and closed.deal > 0
    assert mt5.positions_get() == () and mt5.positions_total() == 0
    deals = mt5.history_deals_get(position=position.identifier)
    assert [d.entry for d in deals] == [mt5.DEAL_ENTRY_IN, mt5.DEAL_ENTRY_OUT]
    assert all(isinstance(d, mt5.TradeDeal) and kinds_match(d, DEAL_KINDS) for d in deals)
    assert mt5.history_deals_get(ticket=opened.order)[0].order == opened.order  # ticket= is the order
    orders = mt5.history_orders_get(position=position.identifier)
    assert all(isinstance(o, mt5.TradeOrder) and kinds_match(o, ORDER_KINDS) for o in orders)


def test_client_side_refusals_name_the_field_an_int_volume_included() -> None:
    mt5.initialize()
    assert buy(volume=1) is None
    assert mt5.last_error() == (-2, 'Invalid "volume" argument')
    assert buy(comment="x" * 40) is None
    assert mt5.last_error() == (-2, 'Invalid "comment" argument')
    assert buy(price=1) is None
    assert mt5.last_error() == (-2, 'Invalid "price" argument')
    assert buy(magic="77") is None
    assert mt5.last_error() == (-2, 'Invalid "magic" argument')
    assert mt5.order_send({"symbol": "EURUSD"}) is None
    assert mt5.last_error() == (-2, 'Invalid "action" argument')
    assert mt5.order_check({"action": mt5.TRADE_ACTION_DEAL, "volume": 1}) is None
    assert mt5.last_error() == (-2, 'Invalid "volume" argument')


@pytest.mark.parametrize("field", ref.FIELDS["TradeRequest"])
def test_every_request_field_of_the_wrong_type_is_refused_by_name(field: str) -> None:
    mt5.initialize()
    kinds = {"symbol": str, "comment": str, "volume": float, "price": float, "stoplimit": float, "sl": float,
             "tp": float}  # fmt: skip
    wrong = 7 if kinds.get(field) is str else "7"
    request = {"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1, "type": mt5.ORDER_TYPE_BUY}
    for send in (mt5.order_send, mt5.order_check):
        assert send(request | {field: wrong}) is None
        assert mt5.last_error() == (-2, f'Invalid "{field}" argument')


def test_order_check_succeeds_with_retcode_zero_and_done() -> None:
    mt5.initialize()
    tick = mt5.symbol_info_tick("EURUSD")
    check = mt5.order_check(
        {"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 1.0, "type": mt5.ORDER_TYPE_BUY,
         "price": tick.ask, "deviation": 10}
    )  # fmt: skip
    assert isinstance(check, mt5.OrderCheckResult)
    assert (check.retcode, check.comment) == (0, "Done")
    assert check.margin > 0 and isinstance(check.request, mt5.TradeRequest)


def test_pending_order_placed_modified_and_removed() -> None:
    mt5.initialize()
    assert mt5.orders_get() == () and mt5.orders_total() == 0
    tick = mt5.symbol_info_tick("EURUSD")
    price = round(tick.ask - 0.01, 5)
    placed = mt5.order_send(
        {"action": mt5.TRADE_ACTION_PENDING, "symbol": "EURUSD", "volume": 0.1,
         "type": mt5.ORDER_TYPE_BUY_LIMIT, "price": price, "type_filling": mt5.ORDER_FILLING_RETURN}
    )  # fmt: skip
    assert placed.retcode in (mt5.TRADE_RETCODE_DONE, mt5.TRADE_RETCODE_PLACED) and placed.order > 0
    (order,) = mt5.orders_get(symbol="EURUSD")
    assert order.ticket == placed.order and order.time_done == 0 and order.price_open == price
    moved = mt5.order_send(
        {"action": mt5.TRADE_ACTION_MODIFY, "order": order.ticket, "price": round(price - 0.001, 5),
         "sl": round(price - 0.011, 5), "tp": round(price + 0.009, 5)}
    )  # fmt: skip
    assert moved.retcode == mt5.TRADE_RETCODE_DONE
    assert mt5.orders_get(ticket=order.ticket)[0].sl == round(price - 0.011, 5)
    removed = mt5.order_send({"action": mt5.TRADE_ACTION_REMOVE, "order": order.ticket})
    assert removed.retcode == mt5.TRADE_RETCODE_DONE and mt5.orders_get() == ()
    (archived,) = mt5.history_orders_get(ticket=order.ticket)
    assert archived.state == mt5.ORDER_STATE_CANCELED and archived.position_id == 0


def test_history_by_time_range_with_integer_seconds_and_datetimes() -> None:
    mt5.initialize()
    buy()
    now = mt5.symbol_info_tick("EURUSD").time
    start, end = now - 3600, now + 3600
    assert mt5.history_deals_total(start, end) >= 1
    assert mt5.history_orders_total(start, end) >= 1
    by_int = mt5.history_deals_get(start, end, group="*EUR*")
    by_datetime = mt5.history_deals_get(
        dt.datetime.fromtimestamp(start, dt.UTC), dt.datetime.fromtimestamp(end, dt.UTC), group="*EUR*"
    )
    assert by_int == by_datetime and len(by_int) >= 1
    assert mt5.history_deals_get(start, end, group="!*EUR*") == ()


def test_rates_and_ticks_are_numpy_arrays_of_the_reference_dtypes() -> None:
    mt5.initialize()
    rates = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, 100)
    assert isinstance(rates, np.ndarray) and rates.dtype == np.dtype(ref.RATES_DTYPE) and len(rates) == 100
    assert np.all(np.diff(rates["time"]) > 0) and np.all(rates["high"] >= rates["low"])
    now = int(mt5.symbol_info_tick("EURUSD").time)
    recent = mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_M1, dt.datetime.fromtimestamp(now, dt.UTC), 10)
    assert len(recent) == 10 and recent["time"][-1] <= now
    ranged = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_M5, now - 3600, now)
    assert len(ranged) > 0 and ranged.dtype == np.dtype(ref.RATES_DTYPE)
    ticks = mt5.copy_ticks_from("EURUSD", now - 60, 100, mt5.COPY_TICKS_ALL)
    assert isinstance(ticks, np.ndarray) and ticks.dtype == np.dtype(ref.TICKS_DTYPE)
    ticks = mt5.copy_ticks_range("EURUSD", now - 60, now + 1, mt5.COPY_TICKS_ALL)
    assert ticks.dtype == np.dtype(ref.TICKS_DTYPE) and len(ticks) >= 1


def test_years_of_bars_on_every_timeframe_and_ticks_as_deep_as_the_bars() -> None:
    mt5.initialize()
    january_2022 = dt.datetime(2022, 1, 10, tzinfo=dt.UTC)
    daily = mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_D1, january_2022, 10)
    assert len(daily) == 10 and daily["time"][-1] <= january_2022.timestamp()
    five_years = {
        mt5.TIMEFRAME_M1: 500,
        mt5.TIMEFRAME_M15: 500,
        mt5.TIMEFRAME_H4: 7000,
        mt5.TIMEFRAME_W1: 250,
    }
    for timeframe, count in (five_years | {mt5.TIMEFRAME_MN1: 58}).items():
        bars = mt5.copy_rates_from_pos("GBPUSD", timeframe, 0, count)
        assert len(bars) == count and np.all(np.diff(bars["time"]) > 0), timeframe
    assert len(mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 100_000)) == 100_000  # "Max. bars"
    now = mt5.symbol_info_tick("EURUSD").time
    last_hour = mt5.copy_ticks_range("EURUSD", now - 3600, now, mt5.COPY_TICKS_ALL)
    assert len(last_hour) >= 200 and np.all(np.diff(last_hour["time_msc"]) >= 0)
    in_2022 = mt5.copy_ticks_from("EURUSD", january_2022, 1000, mt5.COPY_TICKS_ALL)
    assert len(in_2022) == 1000 and in_2022["time"][0] >= january_2022.timestamp()
    minute = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_M1, now - 3600, now - 3540)[0]
    inside = last_hour[(last_hour["time"] >= minute["time"]) & (last_hour["time"] < minute["time"] + 60)]
    assert (inside["bid"].max(), inside["bid"].min()) == (minute["high"], minute["low"])


def test_prices_move_together_where_currencies_are_shared() -> None:
    mt5.initialize()

    def returns(symbol: str) -> Any:
        return np.diff(np.log(mt5.copy_rates_from_pos(symbol, mt5.TIMEFRAME_H1, 0, 2000)["close"]))

    eurusd = returns("EURUSD")
    assert np.corrcoef(eurusd, returns("GBPUSD"))[0, 1] > 0.2
    assert np.corrcoef(eurusd, returns("USDCHF"))[0, 1] < -0.2


def test_live_prices_move_together_too(sim: Simulator) -> None:
    import asyncio

    mt5.initialize()
    assert sim.admin is not None
    start = mt5.symbol_info_tick("EURUSD").time
    asyncio.run(sim.admin.advance_clock(seconds=3 * 3600))  # three hours of live ticks on every symbol

    def live_returns(symbol: str) -> Any:
        bars = mt5.copy_rates_from_pos(symbol, mt5.TIMEFRAME_M1, 0, 150)
        assert bars["time"][0] >= start  # live bars only, none of the generated history
        return np.diff(np.log(bars["close"]))

    eurusd = live_returns("EURUSD")
    assert np.corrcoef(eurusd, live_returns("GBPUSD"))[0, 1] > 0.15
    assert np.corrcoef(eurusd, live_returns("USDCHF"))[0, 1] < -0.15


def test_a_retail_broker_symbol_list() -> None:
    mt5.initialize()
    names = {s.name for s in mt5.symbols_get()}
    assert {"EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD", "USDCAD", "NZDUSD", "EURJPY"} <= names
    assert {"XAUUSD", "XAGUSD"} <= names and {"US500", "GER40"} <= names and {"BTCUSD", "ETHUSD"} <= names
    assert mt5.symbol_info("EURJPY").digits == 3 and mt5.symbol_info("EURJPY").currency_profit == "JPY"
    gold = mt5.symbol_info("XAUUSD")
    assert gold.trade_contract_size == 100.0 and gold.digits == 2
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "EURJPY", 0.1, 162.5) == pytest.approx(108.5, rel=0.01)


def test_sl_and_tp_are_stored_at_the_symbols_digits() -> None:
    mt5.initialize()
    tick = mt5.symbol_info_tick("EURUSD")
    point = mt5.symbol_info("EURUSD").point
    result = buy(sl=tick.ask - 100 * point, tp=tick.ask + 100 * point)  # float noise: 1.0840800000000002
    (position,) = mt5.positions_get(ticket=result.order)
    assert position.sl == round(tick.ask - 100 * point, 5) and repr(position.sl) == repr(
        round(position.sl, 5)
    )
    assert position.tp == round(tick.ask + 100 * point, 5)


def test_margin_and_profit_check_numbers_of_the_reference() -> None:
    mt5.initialize()
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "EURUSD", 0.1, 1.0991) == pytest.approx(109.91)
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "USDJPY", 0.1, 150.0) == pytest.approx(100.0)
    profit = mt5.order_calc_profit(mt5.ORDER_TYPE_BUY, "EURUSD", 1.0, 1.10000, 1.10300)
    assert profit == pytest.approx(300.0)
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "EURUSD", 1, "x") is None
    assert mt5.last_error()[0] == mt5.RES_E_INVALID_PARAMS


def test_the_depth_of_market_needs_a_subscription_and_comes_sorted() -> None:
    mt5.initialize()
    assert mt5.market_book_get("EURUSD") is None
    assert mt5.market_book_add("EURUSD") is True
    book = mt5.market_book_get("EURUSD")
    assert len(book) >= 2 and all(isinstance(b, mt5.BookInfo) for b in book)
    assert [type(v) for v in book[0]] == [int, float, int, float]
    prices = [b.price for b in book]
    assert prices == sorted(prices, reverse=True)
    types = [b.type for b in book]
    assert types == sorted(types) and set(types) == {mt5.BOOK_TYPE_SELL, mt5.BOOK_TYPE_BUY}
    tick = mt5.symbol_info_tick("EURUSD")
    assert min(b.price for b in book if b.type == mt5.BOOK_TYPE_SELL) == tick.ask
    assert max(b.price for b in book if b.type == mt5.BOOK_TYPE_BUY) == tick.bid
    assert mt5.market_book_release("EURUSD") is True
    assert mt5.market_book_get("EURUSD") is None


def test_buy_sell_and_close_helpers() -> None:
    mt5.initialize()
    bought = mt5.Buy("EURUSD", 0.1)
    assert bought.retcode == mt5.TRADE_RETCODE_DONE
    assert bought.request.deviation == 10 and bought.request.type_filling == mt5.ORDER_FILLING_FOK
    sold = mt5.Sell("EURUSD", 0.2)
    assert sold.retcode == mt5.TRADE_RETCODE_DONE
    assert mt5.positions_total() == 2  # hedging: two positions
    assert mt5.Close("EURUSD", ticket=bought.order) is True
    assert mt5.positions_total() == 1
    assert mt5.Close("EURUSD") is True
    assert mt5.Close("EURUSD") is False  # nothing left to close
    assert mt5.Buy("EURUSD", 1) is None  # an int volume, as the package sends it: refused
    assert mt5.last_error() == (-2, 'Invalid "volume" argument')


def test_login_switches_the_account_of_the_attached_terminal(sim: Simulator) -> None:
    import asyncio

    assert sim.admin is not None
    other = asyncio.run(
        sim.admin.create_account(
            server="MTRobot-Demo", password="Other-pass-1", investor_password="Other-inv-1"
        )
    )
    mt5.initialize()
    first = mt5.account_info().login
    assert mt5.login(other, password="Other-pass-1", server="MTRobot-Demo") is True
    assert mt5.account_info().login == other != first
    assert mt5.login(other, password="bad-password", server="MTRobot-Demo") is False
    assert mt5.last_error() == ref.AUTH_FAILED
    assert mt5.login("x") is False and mt5.last_error() == (-2, 'Invalid "login" argument')


def test_calls_from_several_threads_are_serialised_like_the_official_pipe() -> None:
    import threading

    mt5.initialize()
    failures: list[object] = []

    def work() -> None:
        for _ in range(25):
            tick = mt5.symbol_info_tick("EURUSD")
            positions = mt5.positions_get(symbol="EURUSD")
            if tick is None or positions is None:
                failures.append(mt5.last_error())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == [] and not any(t.is_alive() for t in threads)
