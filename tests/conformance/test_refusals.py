"""Every refusal: the retcode (or the client-side None with last_error) MT5 gives, and nothing executed."""

from __future__ import annotations

from typing import Any

import pytest

from mtrobot.broker import constants as mt5
from mtrobot.broker.terminal import Terminal
from tests.conformance.conftest import need_admin
from tests.conformance.helpers import market, open_position, pending, placed, send_market
from tests.conformance.venues import Venue


async def refused(term: Terminal, request: dict[str, Any], retcode: int) -> None:
    """Both order_check and order_send refuse ``request`` with ``retcode``, and nothing changes."""
    positions, orders = await term.positions_total(), await term.orders_total()
    result = await term.order_send(request)
    assert result is not None, await term.last_error()
    assert result.retcode == retcode, result
    assert (result.deal, result.volume) == (0, 0.0)
    assert (await term.positions_total(), await term.orders_total()) == (positions, orders)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("volume", 1),
        ("volume", "0.1"),
        ("price", 1),
        ("sl", float("nan")),
        ("magic", -1),
        ("type", 1.0),
        ("comment", "x" * 40),
        ("comment", "bad\ncomment"),
        ("symbol", 7),
        ("position", -5),
        ("deviation", "10"),
        ("type_filling", None),
        ("unknown_field", 1),
    ],
)
async def test_a_badly_typed_request_field_is_refused_by_the_binding(
    venue: Venue, term: Terminal, field: str, value: Any
) -> None:
    request = await market(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    request[field] = value
    assert await term.order_send(request) is None
    code, text = await term.last_error()
    assert code == mt5.RES_E_INVALID_PARAMS
    assert field in text or "argument" in text or "params" in text
    assert await term.order_check(request) is None
    assert await term.positions_total() == 0


async def test_a_request_without_action_is_refused_by_the_binding(term: Terminal) -> None:
    assert await term.order_send({"symbol": "EURUSD", "volume": 0.1}) is None
    assert await term.last_error() == (mt5.RES_E_INVALID_PARAMS, 'Invalid "action" argument')


@pytest.mark.parametrize("volume", [0.0, 0.001, 0.015, 100_000.0])
async def test_an_invalid_volume_is_refused(venue: Venue, term: Terminal, volume: float) -> None:
    await refused(
        term, await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, volume), mt5.TRADE_RETCODE_INVALID_VOLUME
    )
    check = await term.order_check(await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, volume))
    assert check is not None and check.retcode == mt5.TRADE_RETCODE_INVALID_VOLUME


async def test_stops_on_the_wrong_side_are_invalid_stops(venue: Venue, term: Terminal) -> None:
    tick = await term.symbol_info_tick(venue.symbol)
    assert tick is not None
    wrong_sl = round(tick.ask + 0.0010, 5)
    await refused(
        term,
        await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, sl=wrong_sl),
        mt5.TRADE_RETCODE_INVALID_STOPS,
    )


async def test_stops_inside_the_stops_level_are_invalid_stops(venue: Venue, term: Terminal) -> None:
    info = await term.symbol_info("XAUUSD")
    tick = await term.symbol_info_tick("XAUUSD")
    assert info is not None and tick is not None and info.trade_stops_level > 0
    close_sl = round(tick.bid - (info.trade_stops_level - 1) * info.point, info.digits)
    await refused(
        term, await market(term, "XAUUSD", mt5.ORDER_TYPE_BUY, sl=close_sl), mt5.TRADE_RETCODE_INVALID_STOPS
    )


async def test_a_pending_order_on_the_wrong_side_is_invalid_price(venue: Venue, term: Terminal) -> None:
    request = await pending(term, venue.symbol, mt5.ORDER_TYPE_BUY_LIMIT, 300)
    request["type"] = mt5.ORDER_TYPE_BUY_STOP  # a buy stop below the market
    await refused(term, request, mt5.TRADE_RETCODE_INVALID_PRICE)


async def test_a_stop_limit_with_its_limit_on_the_wrong_side_is_invalid_price(
    venue: Venue, term: Terminal
) -> None:
    request = await pending(term, venue.symbol, mt5.ORDER_TYPE_BUY_STOP_LIMIT, 300)
    request["stoplimit"] = round(request["price"] + 0.0010, 5)
    await refused(term, request, mt5.TRADE_RETCODE_INVALID_PRICE)


async def test_a_price_off_the_tick_grid_is_invalid_price(venue: Venue, term: Terminal) -> None:
    request = await pending(term, venue.symbol, mt5.ORDER_TYPE_BUY_LIMIT, 300)
    request["price"] += 0.0000031
    await refused(term, request, mt5.TRADE_RETCODE_INVALID_PRICE)


async def test_an_unsupported_filling_mode_is_refused(venue: Venue, term: Terminal) -> None:
    request = await pending(term, venue.symbol, mt5.ORDER_TYPE_BUY_LIMIT, 300)
    request["type_filling"] = mt5.ORDER_FILLING_FOK  # pending orders take RETURN only
    await refused(term, request, mt5.TRADE_RETCODE_INVALID_FILL)


async def test_return_filling_under_market_execution_is_refused(netting_venue: Venue) -> None:
    term = await netting_venue.connected()
    info = await term.symbol_info(netting_venue.symbol)
    assert info is not None
    if info.trade_exemode != mt5.SYMBOL_TRADE_EXECUTION_MARKET:
        pytest.skip("needs a symbol under market execution")
    request = await market(
        term, netting_venue.symbol, mt5.ORDER_TYPE_BUY, type_filling=mt5.ORDER_FILLING_RETURN
    )
    await refused(term, request, mt5.TRADE_RETCODE_INVALID_FILL)


async def test_an_expiration_in_the_past_is_invalid(venue: Venue, term: Terminal) -> None:
    tick = await term.symbol_info_tick(venue.symbol)
    assert tick is not None
    request = await pending(
        term,
        venue.symbol,
        mt5.ORDER_TYPE_BUY_LIMIT,
        300,
        type_time=mt5.ORDER_TIME_SPECIFIED,
        expiration=tick.time - 60,
    )
    await refused(term, request, mt5.TRADE_RETCODE_INVALID_EXPIRATION)


async def test_an_expiration_mode_the_symbol_forbids_is_invalid(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.update_symbol(server=venue.server, symbol=venue.symbol, expiration_mode=1)  # type: ignore[attr-defined]
    request = await pending(term, venue.symbol, mt5.ORDER_TYPE_BUY_LIMIT, 300, type_time=mt5.ORDER_TIME_DAY)
    await refused(term, request, mt5.TRADE_RETCODE_INVALID_EXPIRATION)


async def test_not_enough_margin_is_no_money(venue: Venue, term: Terminal) -> None:
    request = await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, 50.0)
    check = await term.order_check(request)
    assert check is not None and check.retcode == mt5.TRADE_RETCODE_NO_MONEY and check.margin_free < 0
    await refused(term, request, mt5.TRADE_RETCODE_NO_MONEY)


async def test_an_unknown_symbol_is_an_invalid_request(term: Terminal) -> None:
    request = {"action": mt5.TRADE_ACTION_DEAL, "symbol": "NOSUCH", "volume": 0.1, "type": 0, "price": 1.0}
    await refused(term, request, mt5.TRADE_RETCODE_INVALID)


async def test_a_pending_type_in_a_deal_is_an_invalid_order(venue: Venue, term: Terminal) -> None:
    request = await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, type=mt5.ORDER_TYPE_BUY_LIMIT)
    await refused(term, request, mt5.TRADE_RETCODE_INVALID_ORDER)


async def test_an_order_type_the_symbol_forbids_is_an_invalid_order(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.update_symbol(server=venue.server, symbol=venue.symbol, order_mode=1 | 2 | 16 | 32)  # type: ignore[attr-defined]
    await refused(
        term, await pending(term, venue.symbol, mt5.ORDER_TYPE_BUY_STOP, 300), mt5.TRADE_RETCODE_INVALID_ORDER
    )


@pytest.mark.parametrize(
    ("trade_mode", "side", "retcode"),
    [
        (mt5.SYMBOL_TRADE_MODE_DISABLED, mt5.ORDER_TYPE_BUY, mt5.TRADE_RETCODE_TRADE_DISABLED),
        (mt5.SYMBOL_TRADE_MODE_LONGONLY, mt5.ORDER_TYPE_SELL, mt5.TRADE_RETCODE_LONG_ONLY),
        (mt5.SYMBOL_TRADE_MODE_SHORTONLY, mt5.ORDER_TYPE_BUY, mt5.TRADE_RETCODE_SHORT_ONLY),
        (mt5.SYMBOL_TRADE_MODE_CLOSEONLY, mt5.ORDER_TYPE_BUY, mt5.TRADE_RETCODE_CLOSE_ONLY),
    ],
)
async def test_symbol_trade_modes_refuse_what_they_forbid(
    venue: Venue, term: Terminal, trade_mode: int, side: int, retcode: int
) -> None:
    admin = need_admin(venue)
    await admin.update_symbol(server=venue.server, symbol=venue.symbol, trade_mode=trade_mode)  # type: ignore[attr-defined]
    await refused(term, await market(term, venue.symbol, side), retcode)


async def test_close_only_still_allows_closing(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    ticket = await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    await admin.update_symbol(
        server=venue.server, symbol=venue.symbol, trade_mode=mt5.SYMBOL_TRADE_MODE_CLOSEONLY
    )  # type: ignore[attr-defined]
    close = await send_market(term, venue.symbol, mt5.ORDER_TYPE_SELL, 0.1, position=ticket)
    assert close.retcode == mt5.TRADE_RETCODE_DONE


async def test_the_market_is_closed_during_maintenance(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    request = await market(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    await admin.start_maintenance(server=venue.server, seconds=120, disconnect=False)  # type: ignore[attr-defined]
    await refused(term, request, mt5.TRADE_RETCODE_MARKET_CLOSED)


async def test_the_market_is_closed_at_the_daily_break_and_the_weekend(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    request = await market(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    now = await admin.server_time(server=venue.server)  # type: ignore[attr-defined]
    to_midnight = 86_400_000 - now % 86_400_000
    await admin.advance_clock(seconds=to_midnight / 1000 + 60)  # type: ignore[attr-defined]  # 00:01 Thursday
    await refused(term, request, mt5.TRADE_RETCODE_MARKET_CLOSED)
    await admin.advance_clock(seconds=5 * 60)  # type: ignore[attr-defined]  # 00:06: open again
    assert (await send_market(term, venue.symbol, mt5.ORDER_TYPE_BUY)).retcode == mt5.TRADE_RETCODE_DONE
    await admin.advance_clock(seconds=2 * 86400)  # type: ignore[attr-defined]  # Saturday
    await refused(term, await market(term, venue.symbol, mt5.ORDER_TYPE_BUY), mt5.TRADE_RETCODE_MARKET_CLOSED)


async def test_no_quotes_is_price_off(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.quotes_off(server=venue.server, symbol=venue.symbol)  # type: ignore[attr-defined]
    await refused(term, await market(term, venue.symbol, mt5.ORDER_TYPE_BUY), mt5.TRADE_RETCODE_PRICE_OFF)


async def test_a_price_beyond_the_deviation_is_requoted_with_fresh_prices(
    venue: Venue, term: Terminal
) -> None:
    admin = need_admin(venue)
    info = await term.symbol_info(venue.symbol)
    if info is None or info.trade_exemode != mt5.SYMBOL_TRADE_EXECUTION_INSTANT:
        pytest.skip("requotes need instant execution")
    request = await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, deviation=5)
    quote = await admin.set_quote(server=venue.server, symbol=venue.symbol, bid=request["price"] + 0.0010)  # type: ignore[attr-defined]
    result = await term.order_send(request)
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_REQUOTE
    assert result.ask == pytest.approx(quote["ask"]) and result.comment == "Requote"
    assert await term.positions_total() == 0


async def test_injected_requotes_and_rejections_hit_the_next_orders_only(
    venue: Venue, term: Terminal
) -> None:
    admin = need_admin(venue)
    await admin.requote_next(server=venue.server, n=1)  # type: ignore[attr-defined]
    await refused(term, await market(term, venue.symbol, mt5.ORDER_TYPE_BUY), mt5.TRADE_RETCODE_REQUOTE)
    await admin.reject_next(server=venue.server, n=2)  # type: ignore[attr-defined]
    await refused(term, await market(term, venue.symbol, mt5.ORDER_TYPE_BUY), mt5.TRADE_RETCODE_REJECT)
    await refused(term, await market(term, venue.symbol, mt5.ORDER_TYPE_BUY), mt5.TRADE_RETCODE_REJECT)
    assert (await send_market(term, venue.symbol, mt5.ORDER_TYPE_BUY)).retcode == mt5.TRADE_RETCODE_DONE


async def test_too_many_requests_are_refused(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.update_server(server=venue.server, max_requests_per_second=2)  # type: ignore[attr-defined]
    codes = [(await send_market(term, venue.symbol, mt5.ORDER_TYPE_BUY)).retcode for _ in range(3)]
    assert codes == [mt5.TRADE_RETCODE_DONE, mt5.TRADE_RETCODE_DONE, mt5.TRADE_RETCODE_TOO_MANY_REQUESTS]


async def test_unchanged_levels_are_no_changes(venue: Venue, term: Terminal) -> None:
    ticket = await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    result = await term.order_send(
        {"action": mt5.TRADE_ACTION_SLTP, "position": ticket, "sl": 0.0, "tp": 0.0}
    )
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_NO_CHANGES


async def test_closing_a_closed_position_is_position_closed(venue: Venue, term: Terminal) -> None:
    if not venue.hedging:
        pytest.skip("hedging account needed")
    ticket = await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    assert (
        await send_market(term, venue.symbol, mt5.ORDER_TYPE_SELL, position=ticket)
    ).retcode == mt5.TRADE_RETCODE_DONE
    await refused(
        term,
        await market(term, venue.symbol, mt5.ORDER_TYPE_SELL, position=ticket),
        mt5.TRADE_RETCODE_POSITION_CLOSED,
    )


async def test_closing_more_than_the_position_is_invalid_close_volume(venue: Venue, term: Terminal) -> None:
    ticket = await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY, 0.1)
    await refused(
        term,
        await market(term, venue.symbol, mt5.ORDER_TYPE_SELL, 0.2, position=ticket),
        mt5.TRADE_RETCODE_INVALID_CLOSE_VOLUME,
    )


async def test_a_level_inside_the_freeze_level_is_frozen(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    info = await term.symbol_info("XAUUSD")
    assert info is not None and info.trade_freeze_level > 0
    request = await pending(term, "XAUUSD", mt5.ORDER_TYPE_BUY_LIMIT, info.trade_stops_level + 20)
    ticket = placed(await term.order_send(request))
    near = request["price"] + (info.trade_freeze_level - 2) * info.point
    await admin.set_quote(server=venue.server, symbol="XAUUSD", bid=round(near - 0.25, 2), ask=round(near, 2))  # type: ignore[attr-defined]
    if await term.orders_total() == 0:
        pytest.fail("the order triggered instead of freezing")
    await refused(term, {"action": mt5.TRADE_ACTION_REMOVE, "order": ticket}, mt5.TRADE_RETCODE_FROZEN)


async def test_the_pending_order_limit_is_enforced(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.update_server(server=venue.server, limit_orders=1)  # type: ignore[attr-defined]
    placed(await term.order_send(await pending(term, venue.symbol, mt5.ORDER_TYPE_BUY_LIMIT, 300)))
    await refused(
        term, await pending(term, venue.symbol, mt5.ORDER_TYPE_BUY_LIMIT, 400), mt5.TRADE_RETCODE_LIMIT_ORDERS
    )


async def test_the_symbol_volume_limit_is_enforced(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.update_symbol(server=venue.server, symbol=venue.symbol, volume_limit=0.5)  # type: ignore[attr-defined]
    await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY, 0.4)
    await refused(
        term, await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, 0.2), mt5.TRADE_RETCODE_LIMIT_VOLUME
    )


async def test_the_position_limit_is_enforced(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.update_server(server=venue.server, limit_positions=1)  # type: ignore[attr-defined]
    await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    await refused(term, await market(term, "GBPUSD", mt5.ORDER_TYPE_BUY), mt5.TRADE_RETCODE_LIMIT_POSITIONS)


async def test_fifo_accounts_must_close_the_oldest_first(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    if not venue.hedging:
        pytest.skip("hedging account needed")
    await admin.update_server(server=venue.server, fifo_close=True)  # type: ignore[attr-defined]
    await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    await admin.advance_clock(seconds=1)  # type: ignore[attr-defined]
    newer = await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    await refused(
        term,
        await market(term, venue.symbol, mt5.ORDER_TYPE_SELL, position=newer),
        mt5.TRADE_RETCODE_FIFO_CLOSE,
    )


async def test_hedge_prohibited_refuses_an_opposite_position(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    if not venue.hedging:
        pytest.skip("hedging account needed")
    await admin.update_server(server=venue.server, hedge_prohibited=True)  # type: ignore[attr-defined]
    await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    await refused(
        term, await market(term, venue.symbol, mt5.ORDER_TYPE_SELL), mt5.TRADE_RETCODE_HEDGE_PROHIBITED
    )


async def test_a_broker_that_disables_algo_trading_refuses_with_10026(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.set_account(login=venue.login, trade_expert=False)  # type: ignore[attr-defined]
    await refused(
        term, await market(term, venue.symbol, mt5.ORDER_TYPE_BUY), mt5.TRADE_RETCODE_SERVER_DISABLES_AT
    )


async def test_close_by_is_refused_on_netting(netting_venue: Venue) -> None:
    term = await netting_venue.connected()
    ticket = await open_position(term, netting_venue.symbol, mt5.ORDER_TYPE_BUY)
    request = {"action": mt5.TRADE_ACTION_CLOSE_BY, "position": ticket, "position_by": ticket}
    await refused(term, request, mt5.TRADE_RETCODE_INVALID_ORDER)


async def test_modifying_or_removing_an_unknown_order_is_invalid(term: Terminal) -> None:
    await refused(term, {"action": mt5.TRADE_ACTION_REMOVE, "order": 123}, mt5.TRADE_RETCODE_INVALID)
    await refused(
        term, {"action": mt5.TRADE_ACTION_MODIFY, "order": 123, "price": 1.0}, mt5.TRADE_RETCODE_INVALID
    )
    await refused(term, {"action": 99}, mt5.TRADE_RETCODE_INVALID)


async def test_fok_larger_than_the_liquidity_is_rejected_and_ioc_fills_partially(
    venue: Venue, term: Terminal
) -> None:
    admin = need_admin(venue)
    await admin.update_symbol(server=venue.server, symbol=venue.symbol, liquidity_lots=0.3)  # type: ignore[attr-defined]
    fok = await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, 0.5, type_filling=mt5.ORDER_FILLING_FOK)
    await refused(term, fok, mt5.TRADE_RETCODE_REJECT)
    ioc = await send_market(term, venue.symbol, mt5.ORDER_TYPE_BUY, 0.5, type_filling=mt5.ORDER_FILLING_IOC)
    assert ioc.retcode == mt5.TRADE_RETCODE_DONE_PARTIAL and ioc.volume == pytest.approx(0.3)
    assert await term.orders_total() == 0
    (order,) = await term.history_orders_get(ticket=ioc.order)  # type: ignore[misc]
    assert order.volume_initial == pytest.approx(0.5) and order.volume_current == pytest.approx(0.2)


async def test_return_filling_leaves_the_remainder_working(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.update_symbol(server=venue.server, symbol=venue.symbol, liquidity_lots=0.3)  # type: ignore[attr-defined]
    result = await send_market(
        term, venue.symbol, mt5.ORDER_TYPE_BUY, 0.5, type_filling=mt5.ORDER_FILLING_RETURN
    )
    assert result.retcode == mt5.TRADE_RETCODE_DONE_PARTIAL and result.volume == pytest.approx(0.3)
    (order,) = await term.orders_get(ticket=result.order)  # type: ignore[misc]
    assert order.state == mt5.ORDER_STATE_PARTIAL and order.volume_current == pytest.approx(0.2)
    await admin.advance_clock(seconds=2)  # type: ignore[attr-defined]
    assert await term.orders_total() == 0
    deals = await term.history_deals_get(ticket=result.order)
    assert deals is not None and sum(d.volume for d in deals) == pytest.approx(0.5) and len(deals) == 2


async def test_a_broker_may_refuse_sl_tp_on_a_market_execution_open(netting_venue: Venue) -> None:
    admin = need_admin(netting_venue)
    term = await netting_venue.connected()
    await admin.update_server(server=netting_venue.server, sltp_on_market_open=False)  # type: ignore[attr-defined]
    tick = await term.symbol_info_tick(netting_venue.symbol)
    assert tick is not None
    sl = round(tick.bid - 0.0050, 5)
    await refused(
        term,
        await market(term, netting_venue.symbol, mt5.ORDER_TYPE_BUY, sl=sl),
        mt5.TRADE_RETCODE_INVALID_STOPS,
    )
    ticket = await open_position(term, netting_venue.symbol, mt5.ORDER_TYPE_BUY)
    result = await term.order_send(
        {
            "action": mt5.TRADE_ACTION_SLTP,
            "symbol": netting_venue.symbol,
            "position": ticket,
            "sl": sl,
            "tp": 0.0,
        }
    )
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_DONE


async def test_a_favourable_move_beyond_the_deviation_fills_unless_the_broker_requotes_both_ways(
    venue: Venue, term: Terminal
) -> None:
    admin = need_admin(venue)
    info = await term.symbol_info(venue.symbol)
    if info is None or info.trade_exemode != mt5.SYMBOL_TRADE_EXECUTION_INSTANT:
        pytest.skip("requotes need instant execution")
    request = await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, deviation=5)
    await admin.set_quote(server=venue.server, symbol=venue.symbol, bid=request["price"] - 0.0020)  # type: ignore[attr-defined]
    assert (await term.order_send(request)).retcode == mt5.TRADE_RETCODE_DONE  # type: ignore[union-attr]
    await admin.update_server(server=venue.server, requote_both_ways=True)  # type: ignore[attr-defined]
    await refused(term, request, mt5.TRADE_RETCODE_REQUOTE)


async def test_a_broker_may_refuse_new_exposure_in_margin_call(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.update_server(server=venue.server, margin_call_blocks_new=True, margin_call=300.0)  # type: ignore[attr-defined]
    await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY, 2.0)  # margin level about 460 %
    check = await term.order_check(await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, 2.0))
    assert check is not None and check.retcode == mt5.TRADE_RETCODE_NO_MONEY and check.margin_free > 0
    await refused(term, await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, 2.0), mt5.TRADE_RETCODE_NO_MONEY)


async def test_request_execution_answers_prices_changed_when_the_quote_moved(
    venue: Venue, term: Terminal
) -> None:
    admin = need_admin(venue)
    await admin.update_symbol(
        server=venue.server, symbol=venue.symbol, execution=mt5.SYMBOL_TRADE_EXECUTION_REQUEST
    )  # type: ignore[attr-defined]
    request = await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, deviation=5)
    quote = await admin.set_quote(server=venue.server, symbol=venue.symbol, bid=request["price"] + 0.0010)  # type: ignore[attr-defined]
    result = await term.order_send(request)
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_PRICE_CHANGED
    assert result.ask == pytest.approx(quote["ask"]) and await term.positions_total() == 0


async def test_a_strict_build_refuses_punctuation_in_comments(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.update_server(server=venue.server, strict_comments=True)  # type: ignore[attr-defined]
    assert (
        await term.order_send(await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, comment="m:order-1"))
        is None
    )
    assert await term.last_error() == (mt5.RES_E_INVALID_PARAMS, 'Invalid "comment" argument')
    assert (await send_market(term, venue.symbol, mt5.ORDER_TYPE_BUY, comment="m-order_1")).retcode == 10009
