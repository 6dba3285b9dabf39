"""Account, terminal and symbol data, quotes, bars and ticks, margin and profit calculations."""

from __future__ import annotations

import time

import numpy as np
import pytest

from mtrobot.broker import constants as mt5
from mtrobot.broker.arrays import RATES_DTYPE, TICKS_DTYPE
from mtrobot.broker.structures import AccountInfo, SymbolInfo, TerminalInfo, Tick
from mtrobot.broker.terminal import Terminal
from tests.conformance.conftest import need_admin
from tests.conformance.helpers import open_position
from tests.conformance.venues import Venue

FAR_FUTURE = 4_000_000_000


async def test_account_info_is_consistent(term: Terminal) -> None:
    info = await term.account_info()
    assert isinstance(info, AccountInfo)
    assert info.equity == pytest.approx(info.balance + info.credit + info.profit, abs=0.01)
    assert info.margin_free == pytest.approx(info.equity - info.margin, abs=0.01)
    assert info.margin_mode in (0, 1, 2) and info.leverage >= 1 and info.currency


async def test_margin_level_is_equity_over_margin(venue: Venue, term: Terminal) -> None:
    await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    info = await term.account_info()
    assert info is not None and info.margin > 0
    assert info.margin_level == pytest.approx(info.equity / info.margin * 100, rel=1e-3)


async def test_terminal_info_reports_a_connected_terminal(term: Terminal) -> None:
    info = await term.terminal_info()
    assert isinstance(info, TerminalInfo) and info.connected is True and info.build > 0


async def test_symbols_can_be_listed_and_filtered_by_group(venue: Venue, term: Terminal) -> None:
    total = await term.symbols_total()
    everything = await term.symbols_get()
    assert everything is not None and len(everything) == total > 0
    assert all(isinstance(s, SymbolInfo) for s in everything)
    usd = await term.symbols_get(group="*USD*")
    assert usd is not None and {s.name for s in usd} <= {s.name for s in everything}
    no_usd = await term.symbols_get("*,!*USD*")
    assert no_usd is not None and not any("USD" in s.name for s in no_usd)


async def test_symbol_info_describes_the_instrument(venue: Venue, term: Terminal) -> None:
    info = await term.symbol_info(venue.symbol)
    assert info is not None and info.name == venue.symbol
    assert info.point == pytest.approx(10**-info.digits)
    assert info.ask >= info.bid > 0 and info.volume_min <= info.volume_max and info.volume_step > 0
    assert info.spread == round((info.ask - info.bid) / info.point)


async def test_an_unknown_symbol_is_not_found(term: Terminal) -> None:
    assert await term.symbol_info("NOSUCH") is None
    assert (await term.last_error())[0] == mt5.RES_E_NOT_FOUND
    assert await term.symbol_select("NOSUCH", True) is False


async def test_ticks_need_the_symbol_in_market_watch(venue: Venue, term: Terminal) -> None:
    need_admin(venue)  # the simulator's reading; a real terminal may still answer for a hidden symbol
    symbols = await term.symbols_get()
    assert symbols is not None
    hidden = next((s.name for s in symbols if not s.select), None)
    if hidden is None:
        pytest.skip("every symbol is already in Market Watch")
    assert await term.symbol_info_tick(hidden) is None
    assert await term.symbol_select(hidden, True) is True
    tick = await term.symbol_info_tick(hidden)
    assert isinstance(tick, Tick) and tick.bid > 0 and tick.time_msc // 1000 == tick.time
    assert (await term.symbol_info(hidden)).select is True  # type: ignore[union-attr]
    assert await term.symbol_select(hidden, False) is True


async def test_a_symbol_with_a_position_cannot_leave_market_watch(venue: Venue, term: Terminal) -> None:
    await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    assert await term.symbol_select(venue.symbol, False) is False


async def test_rates_come_as_mt5_numpy_records_oldest_first(venue: Venue, term: Terminal) -> None:
    rates = await term.copy_rates_from_pos(venue.symbol, mt5.TIMEFRAME_M5, 0, 50)
    assert rates is not None and rates.dtype == RATES_DTYPE and len(rates) == 50
    assert np.all(np.diff(rates["time"]) > 0)
    assert np.all(rates["high"] >= rates["low"])
    assert np.all(rates["time"] % 300 == 0)
    older = await term.copy_rates_from_pos(venue.symbol, mt5.TIMEFRAME_M5, 10, 5)
    assert older is not None and list(older["time"]) == list(rates["time"][-15:-10])


async def test_rates_from_a_date_end_at_that_date(venue: Venue, term: Terminal) -> None:
    latest = await term.copy_rates_from_pos(venue.symbol, mt5.TIMEFRAME_H1, 0, 30)
    assert latest is not None and len(latest) == 30
    anchor = int(latest["time"][-5])
    bars = await term.copy_rates_from(venue.symbol, mt5.TIMEFRAME_H1, anchor, 10)
    assert bars is not None and len(bars) == 10 and int(bars["time"][-1]) == anchor
    ranged = await term.copy_rates_range(venue.symbol, mt5.TIMEFRAME_H1, int(latest["time"][0]), anchor)
    assert ranged is not None and list(ranged["time"]) == list(latest["time"][:-4])


async def test_daily_bars_start_at_server_midnight(venue: Venue, term: Terminal) -> None:
    bars = await term.copy_rates_from_pos(venue.symbol, mt5.TIMEFRAME_D1, 0, 3)
    assert bars is not None and len(bars) == 3 and np.all(bars["time"] % 86400 == 0)


async def test_ticks_come_as_mt5_numpy_records(venue: Venue, term: Terminal) -> None:
    tick = await term.symbol_info_tick(venue.symbol)
    assert tick is not None
    since = tick.time - 3600
    ticks = await term.copy_ticks_from(venue.symbol, since, 100, mt5.COPY_TICKS_ALL)
    assert ticks is not None and ticks.dtype == TICKS_DTYPE and 1 <= len(ticks) <= 100
    assert np.all(ticks["time_msc"] >= since * 1000) and np.all(np.diff(ticks["time_msc"]) >= 0)
    ranged = await term.copy_ticks_range(venue.symbol, since, tick.time + 1, mt5.COPY_TICKS_INFO)
    assert ranged is not None and len(ranged) >= 1 and ranged.dtype == TICKS_DTYPE


async def test_bad_series_arguments_are_invalid_params(venue: Venue, term: Terminal) -> None:
    assert await term.copy_rates_from_pos(venue.symbol, 7, 0, 10) is None
    assert (await term.last_error())[0] == mt5.RES_E_INVALID_PARAMS
    assert await term.copy_ticks_from(venue.symbol, 0, 10, 99) is None
    assert (await term.last_error())[0] == mt5.RES_E_INVALID_PARAMS
    assert await term.copy_rates_from_pos("NOSUCH", mt5.TIMEFRAME_M1, 0, 10) is None


async def test_margin_follows_the_forex_formula(venue: Venue, term: Terminal) -> None:
    """MT5 docs: 1:100, 0.1 lot EURUSD at 1.0991 -> 109.91 USD; 0.1 lot USDJPY -> 100.0 USD."""
    info = await term.account_info()
    if info is None or info.currency != "USD" or info.leverage != 100:
        pytest.skip("the check numbers assume a USD account at 1:100")
    eur = await term.order_calc_margin(mt5.ORDER_TYPE_BUY, "EURUSD", 0.1, 1.0991)
    jpy = await term.order_calc_margin(mt5.ORDER_TYPE_SELL, "USDJPY", 0.1, 150.0)
    assert eur == pytest.approx(109.91, abs=0.02)
    assert jpy == pytest.approx(100.0, abs=0.01)


async def test_profit_follows_the_forex_formula(term: Terminal) -> None:
    """MT5 docs: 1 lot EURUSD, 300 points -> 300.0 USD either way."""
    assert await term.order_calc_profit(mt5.ORDER_TYPE_BUY, "EURUSD", 1.0, 1.1, 1.103) == pytest.approx(300.0)
    assert await term.order_calc_profit(mt5.ORDER_TYPE_SELL, "EURUSD", 1.0, 1.103, 1.1) == pytest.approx(
        300.0
    )
    jpy = await term.order_calc_profit(mt5.ORDER_TYPE_BUY, "USDJPY", 1.0, 150.0, 150.3)
    assert jpy is not None and 150 < jpy < 250


async def test_calculations_accept_only_buy_or_sell(term: Terminal) -> None:
    assert await term.order_calc_margin(mt5.ORDER_TYPE_BUY_LIMIT, "EURUSD", 0.1, 1.1) is None
    assert (await term.last_error())[0] == mt5.RES_E_INVALID_PARAMS


async def test_prices_move_with_time(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    before = await term.symbol_info_tick(venue.symbol)
    await admin.advance_clock(seconds=120)  # type: ignore[attr-defined]
    after = await term.symbol_info_tick(venue.symbol)
    assert before is not None and after is not None
    assert after.time_msc > before.time_msc
    ticks = await term.copy_ticks_range(venue.symbol, before.time, after.time, mt5.COPY_TICKS_ALL)
    assert ticks is not None and len(ticks) >= 100


async def test_history_is_empty_far_in_the_future(term: Terminal) -> None:
    assert await term.history_deals_get(FAR_FUTURE, FAR_FUTURE + 10) == ()
    assert await term.history_orders_total(FAR_FUTURE, FAR_FUTURE + 10) == 0
    assert time.time() > 0
