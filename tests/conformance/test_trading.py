"""Orders, positions and history: what each trade action does when it succeeds."""

from __future__ import annotations

import pytest

from mtrobot.broker import constants as mt5
from mtrobot.broker.terminal import Terminal
from tests.conformance.conftest import need_admin
from tests.conformance.helpers import market, open_position, pending, placed, send_market
from tests.conformance.venues import Venue

ALL_TIME = (0, 4_000_000_000)


async def test_a_market_buy_opens_a_position_with_its_deal_and_order(venue: Venue, term: Terminal) -> None:
    result = await send_market(term, venue.symbol, mt5.ORDER_TYPE_BUY, 0.1, comment="python script open")
    assert result.retcode == mt5.TRADE_RETCODE_DONE and result.comment == "Request executed"
    assert result.deal > 0 and result.order > 0 and result.volume == pytest.approx(0.1)
    assert result.ask >= result.bid > 0 and result.price > 0
    assert result.request.comment == "python script open"
    positions = await term.positions_get(symbol=venue.symbol)
    assert positions is not None and len(positions) == 1
    position = positions[0]
    assert position.ticket == result.order and position.identifier == result.order
    assert position.type == mt5.POSITION_TYPE_BUY and position.magic == 4242
    assert position.reason == mt5.POSITION_REASON_EXPERT
    assert position.comment and "python script open".startswith(position.comment)  # brokers may cut it
    if venue.admin is not None:
        assert position.comment == "python script op"  # the simulated servers keep 16 characters
    deals = await term.history_deals_get(ticket=result.order)  # ticket= is the ORDER ticket
    assert deals is not None and [d.ticket for d in deals] == [result.deal]
    assert deals[0].entry == mt5.DEAL_ENTRY_IN and deals[0].position_id == position.identifier
    orders = await term.history_orders_get(ticket=result.order)
    assert orders is not None and orders[0].state == mt5.ORDER_STATE_FILLED and orders[0].time_done > 0


async def test_order_check_passes_with_done_and_shows_the_margin_after(venue: Venue, term: Terminal) -> None:
    before = await term.account_info()
    check = await term.order_check(await market(term, venue.symbol, mt5.ORDER_TYPE_BUY, 1.0))
    assert check is not None and check.retcode == 0 and check.comment == "Done"
    assert before is not None and check.margin > before.margin
    assert check.margin_free == pytest.approx(check.equity - check.margin, abs=0.01)
    assert await term.positions_total() == 0


async def test_a_hedging_position_is_closed_by_ticket_partially_then_fully(
    venue: Venue, term: Terminal
) -> None:
    if not venue.hedging:
        pytest.skip("hedging account needed")
    start = await term.account_info()
    assert start is not None
    ticket = await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY, 0.3)
    partial = await send_market(term, venue.symbol, mt5.ORDER_TYPE_SELL, 0.1, position=ticket)
    assert partial.retcode == mt5.TRADE_RETCODE_DONE
    (position,) = await term.positions_get(ticket=ticket)  # type: ignore[misc]
    assert position.volume == pytest.approx(0.2) and position.ticket == ticket
    closing = await send_market(term, venue.symbol, mt5.ORDER_TYPE_SELL, 0.2, position=ticket)
    assert closing.retcode == mt5.TRADE_RETCODE_DONE
    assert await term.positions_get(ticket=ticket) == ()
    deals = await term.history_deals_get(position=ticket)
    assert deals is not None and [d.entry for d in deals] == [
        mt5.DEAL_ENTRY_IN,
        mt5.DEAL_ENTRY_OUT,
        mt5.DEAL_ENTRY_OUT,
    ]
    info = await term.account_info()
    booked = sum(d.profit + d.commission + d.swap for d in deals)
    assert info is not None and info.balance == pytest.approx(start.balance + booked, abs=0.01)


async def test_an_opposite_deal_without_position_opens_a_second_position_on_hedging(
    venue: Venue, term: Terminal
) -> None:
    if not venue.hedging:
        pytest.skip("hedging account needed")
    await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    await open_position(term, venue.symbol, mt5.ORDER_TYPE_SELL)
    positions = await term.positions_get(symbol=venue.symbol)
    assert positions is not None and sorted(p.type for p in positions) == [0, 1]


async def test_close_by_closes_the_smaller_position_and_reduces_the_larger(
    venue: Venue, term: Terminal
) -> None:
    if not venue.hedging:
        pytest.skip("hedging account needed")
    buy = await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY, 0.3)
    sell = await open_position(term, venue.symbol, mt5.ORDER_TYPE_SELL, 0.1)
    result = await term.order_send(
        {"action": mt5.TRADE_ACTION_CLOSE_BY, "position": buy, "position_by": sell, "magic": 4242}
    )
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_DONE
    positions = await term.positions_get(symbol=venue.symbol)
    assert positions is not None and len(positions) == 1 and positions[0].ticket == buy
    assert positions[0].volume == pytest.approx(0.2)
    deals = await term.history_deals_get(ticket=result.order)
    assert deals is not None and {d.entry for d in deals} == {mt5.DEAL_ENTRY_OUT_BY} and len(deals) == 2


async def test_netting_adds_reduces_and_reverses_one_position(netting_venue: Venue) -> None:
    term = await netting_venue.connected()
    symbol = netting_venue.symbol
    first = await open_position(term, symbol, mt5.ORDER_TYPE_BUY, 0.2)
    await open_position(term, symbol, mt5.ORDER_TYPE_BUY, 0.1)
    (position,) = await term.positions_get(symbol=symbol)  # type: ignore[misc]
    assert position.volume == pytest.approx(0.3) and position.identifier == first
    reduced = await send_market(term, symbol, mt5.ORDER_TYPE_SELL, 0.1)
    assert reduced.retcode == mt5.TRADE_RETCODE_DONE
    (position,) = await term.positions_get(symbol=symbol)  # type: ignore[misc]
    assert position.volume == pytest.approx(0.2)
    reversal = await send_market(term, symbol, mt5.ORDER_TYPE_SELL, 0.5)
    assert reversal.retcode == mt5.TRADE_RETCODE_DONE
    (position,) = await term.positions_get(symbol=symbol)  # type: ignore[misc]
    assert position.type == mt5.POSITION_TYPE_SELL and position.volume == pytest.approx(0.3)
    assert position.identifier == first and position.ticket == reversal.order
    deals = await term.history_deals_get(position=first)
    assert deals is not None and deals[-1].entry == mt5.DEAL_ENTRY_INOUT
    info = await term.account_info()
    assert info is not None and info.margin_mode == mt5.ACCOUNT_MARGIN_MODE_RETAIL_NETTING


@pytest.mark.parametrize(
    "order_type",
    [
        mt5.ORDER_TYPE_BUY_LIMIT,
        mt5.ORDER_TYPE_SELL_LIMIT,
        mt5.ORDER_TYPE_BUY_STOP,
        mt5.ORDER_TYPE_SELL_STOP,
        mt5.ORDER_TYPE_BUY_STOP_LIMIT,
        mt5.ORDER_TYPE_SELL_STOP_LIMIT,
    ],
)
async def test_pending_orders_are_placed_modified_and_removed(
    venue: Venue, term: Terminal, order_type: int
) -> None:
    request = await pending(term, venue.symbol, order_type, 300, comment="pending")
    ticket = placed(await term.order_send(request))
    (order,) = await term.orders_get(ticket=ticket)  # type: ignore[misc]
    assert order.type == order_type and order.state == mt5.ORDER_STATE_PLACED and order.time_done == 0
    assert order.price_open == pytest.approx(request["price"]) and order.volume_current == pytest.approx(0.1)
    moved = await pending(term, venue.symbol, order_type, 400)
    modify = {
        "action": mt5.TRADE_ACTION_MODIFY,
        "order": ticket,
        "price": moved["price"],
        "stoplimit": moved.get("stoplimit", 0.0),
        "type_time": mt5.ORDER_TIME_GTC,
    }
    result = await term.order_send(modify)
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_DONE
    (order,) = await term.orders_get(ticket=ticket)  # type: ignore[misc]
    assert order.price_open == pytest.approx(moved["price"])
    removed = await term.order_send({"action": mt5.TRADE_ACTION_REMOVE, "order": ticket})
    assert removed is not None and removed.retcode == mt5.TRADE_RETCODE_DONE
    assert await term.orders_total() == 0
    (history,) = await term.history_orders_get(ticket=ticket)  # type: ignore[misc]
    assert history.state == mt5.ORDER_STATE_CANCELED and history.position_id == 0


async def test_a_buy_limit_fills_when_ask_reaches_it(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    request = await pending(term, venue.symbol, mt5.ORDER_TYPE_BUY_LIMIT, 200, tp=0.0)
    ticket = placed(await term.order_send(request))
    await admin.set_quote(server=venue.server, symbol=venue.symbol, bid=request["price"] - 0.0003)  # type: ignore[attr-defined]
    assert await term.orders_total() == 0
    (position,) = await term.positions_get(symbol=venue.symbol)  # type: ignore[misc]
    assert position.identifier == ticket and position.price_open <= request["price"]
    (order,) = await term.history_orders_get(ticket=ticket)  # type: ignore[misc]
    assert order.state == mt5.ORDER_STATE_FILLED


async def test_a_stop_limit_becomes_a_limit_order_when_its_price_is_reached(
    venue: Venue, term: Terminal
) -> None:
    admin = need_admin(venue)
    request = await pending(term, venue.symbol, mt5.ORDER_TYPE_BUY_STOP_LIMIT, 200)
    ticket = placed(await term.order_send(request))
    await admin.set_quote(server=venue.server, symbol=venue.symbol, bid=request["price"] + 0.0001)  # type: ignore[attr-defined]
    (order,) = await term.orders_get(ticket=ticket)  # type: ignore[misc]
    assert order.type == mt5.ORDER_TYPE_BUY_LIMIT and order.price_open == pytest.approx(request["stoplimit"])


async def test_a_pending_order_expires_at_its_time(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    tick = await term.symbol_info_tick(venue.symbol)
    assert tick is not None
    request = await pending(
        term,
        venue.symbol,
        mt5.ORDER_TYPE_SELL_LIMIT,
        500,
        type_time=mt5.ORDER_TIME_SPECIFIED,
        expiration=tick.time + 60,
    )
    ticket = placed(await term.order_send(request))
    await admin.advance_clock(seconds=61)  # type: ignore[attr-defined]
    assert await term.orders_get(ticket=ticket) == ()
    (order,) = await term.history_orders_get(ticket=ticket)  # type: ignore[misc]
    assert order.state == mt5.ORDER_STATE_EXPIRED


async def test_sl_and_tp_are_set_changed_and_trigger(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    ticket = await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    tick = await term.symbol_info_tick(venue.symbol)
    assert tick is not None
    sl, tp = round(tick.bid - 0.0050, 5), round(tick.bid + 0.0050, 5)
    result = await term.order_send({"action": mt5.TRADE_ACTION_SLTP, "position": ticket, "sl": sl, "tp": tp})
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_DONE
    assert (result.deal, result.order, result.volume) == (0, 0, 0.0)
    (position,) = await term.positions_get(ticket=ticket)  # type: ignore[misc]
    assert (position.sl, position.tp) == (sl, tp)
    await admin.set_quote(server=venue.server, symbol=venue.symbol, bid=sl - 0.0002)  # type: ignore[attr-defined]
    assert await term.positions_get(ticket=ticket) == ()
    deals = await term.history_deals_get(position=ticket)
    assert (
        deals is not None and deals[-1].reason == mt5.DEAL_REASON_SL and deals[-1].entry == mt5.DEAL_ENTRY_OUT
    )
    assert deals[-1].comment.startswith("[sl")


async def test_a_take_profit_closes_a_short_with_reason_tp(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    tick = await term.symbol_info_tick(venue.symbol)
    assert tick is not None
    tp = round(tick.ask - 0.0040, 5)
    ticket = await open_position(term, venue.symbol, mt5.ORDER_TYPE_SELL, tp=tp)
    await admin.set_quote(server=venue.server, symbol=venue.symbol, bid=tp - 0.0005, ask=tp - 0.0003)  # type: ignore[attr-defined]
    deals = await term.history_deals_get(position=ticket)
    assert deals is not None and deals[-1].reason == mt5.DEAL_REASON_TP and deals[-1].profit > 0


async def test_stop_out_closes_the_worst_position_first(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY, 5.0)
    await open_position(term, "GBPUSD", mt5.ORDER_TYPE_BUY, 0.1)
    tick = await term.symbol_info_tick(venue.symbol)
    assert tick is not None
    await admin.set_quote(server=venue.server, symbol=venue.symbol, bid=tick.bid - 0.0190)  # type: ignore[attr-defined]
    positions = await term.positions_get()
    assert positions is not None and [p.symbol for p in positions] == ["GBPUSD"]
    deals = await term.history_deals_get(*ALL_TIME)
    assert deals is not None and any(d.reason == mt5.DEAL_REASON_SO for d in deals)
    info = await term.account_info()
    assert info is not None and info.margin_level > info.margin_so_so


async def test_history_can_be_read_by_time_group_ticket_and_position(venue: Venue, term: Terminal) -> None:
    ticket = await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    deals = await term.history_deals_get(*ALL_TIME)
    assert deals is not None and any(d.type == mt5.DEAL_TYPE_BALANCE for d in deals)
    assert await term.history_deals_total(*ALL_TIME) == len(deals)
    grouped = await term.history_deals_get(*ALL_TIME, group=f"*{venue.symbol[:3]}*")
    assert grouped is not None and all(d.symbol == venue.symbol for d in grouped) and grouped
    orders = await term.history_orders_get(*ALL_TIME)
    assert orders is not None and ticket in {o.ticket for o in orders}
    assert await term.history_orders_total(*ALL_TIME) == len(orders)
    by_position = await term.history_orders_get(position=ticket)
    assert by_position is not None and [o.ticket for o in by_position] == [ticket]
    assert await term.history_deals_get(ticket=999_999_999) == ()


async def test_orders_and_positions_can_be_filtered(venue: Venue, term: Terminal) -> None:
    await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    await open_position(term, "GBPUSD", mt5.ORDER_TYPE_BUY)
    placed(await term.order_send(await pending(term, "GBPUSD", mt5.ORDER_TYPE_BUY_LIMIT, 300)))
    assert await term.positions_total() == 2 and await term.orders_total() == 1
    only = await term.positions_get(group="GBP*")
    assert only is not None and [p.symbol for p in only] == ["GBPUSD"]
    assert await term.orders_get(symbol=venue.symbol) == ()
    orders = await term.orders_get(group="*")
    assert orders is not None and len(orders) == 1


async def test_swap_is_charged_at_the_rollover_triple_on_wednesday_and_realised_on_close(
    venue: Venue, term: Terminal
) -> None:
    admin = need_admin(venue)
    ticket = await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY, 1.0)
    info = await term.symbol_info(venue.symbol)
    assert info is not None and info.swap_long != 0
    now = await admin.server_time(server=venue.server)  # type: ignore[attr-defined]
    await admin.advance_clock(seconds=(86_400_000 - now % 86_400_000) / 1000 + 600)  # type: ignore[attr-defined]
    (position,) = await term.positions_get(ticket=ticket)  # type: ignore[misc]
    expected = 3 * info.swap_long * info.point * info.trade_contract_size  # the Wednesday rollover
    assert position.swap == pytest.approx(expected, abs=0.02)
    close = await send_market(term, venue.symbol, mt5.ORDER_TYPE_SELL, 1.0, position=ticket)
    assert close.retcode == mt5.TRADE_RETCODE_DONE
    deals = await term.history_deals_get(position=ticket)
    assert deals is not None and deals[-1].swap == pytest.approx(expected, abs=0.02)


async def test_crypto_trades_at_the_weekend_while_forex_is_closed(venue: Venue, term: Terminal) -> None:
    admin = need_admin(venue)
    await admin.advance_clock(seconds=3 * 86400)  # type: ignore[attr-defined]  # Saturday noon
    assert await term.symbol_select("BTCUSD", True)
    btc = await send_market(term, "BTCUSD", mt5.ORDER_TYPE_BUY, 0.01)
    assert btc.retcode == mt5.TRADE_RETCODE_DONE
    fx = await send_market(term, venue.symbol, mt5.ORDER_TYPE_BUY)
    assert fx.retcode == mt5.TRADE_RETCODE_MARKET_CLOSED


async def test_daily_gtc_mode_ends_pending_orders_and_stops_with_the_day(
    venue: Venue, term: Terminal
) -> None:
    admin = need_admin(venue)
    await admin.update_symbol(
        server=venue.server, symbol=venue.symbol, order_gtc_mode=mt5.SYMBOL_ORDERS_DAILY
    )  # type: ignore[attr-defined]
    ticket = placed(await term.order_send(await pending(term, venue.symbol, mt5.ORDER_TYPE_BUY_LIMIT, 500)))
    tick = await term.symbol_info_tick(venue.symbol)
    assert tick is not None
    position = await open_position(term, venue.symbol, mt5.ORDER_TYPE_BUY, sl=round(tick.bid - 0.0100, 5))
    await admin.freeze_prices(server=venue.server)  # type: ignore[attr-defined]  # nothing may trigger meanwhile
    now = await admin.server_time(server=venue.server)  # type: ignore[attr-defined]
    await admin.advance_clock(seconds=(86_400_000 - now % 86_400_000) / 1000 + 600)  # type: ignore[attr-defined]
    (order,) = await term.history_orders_get(ticket=ticket)  # type: ignore[misc]
    assert order.state == mt5.ORDER_STATE_EXPIRED
    (held,) = await term.positions_get(ticket=position)  # type: ignore[misc]
    assert held.sl == 0.0
