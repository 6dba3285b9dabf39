"""Random trading sessions (seeded) keep the books consistent, on hedging and netting servers alike."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from mtrobot.broker import constants as mt5
from mtrobot.broker.terminal import Terminal
from mtrobot.sim.harness import sim_harness

START = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)
SYMBOLS = ("EURUSD", "USDJPY", "XAUUSD")
TERMINAL_STATES = {
    mt5.ORDER_STATE_FILLED,
    mt5.ORDER_STATE_CANCELED,
    mt5.ORDER_STATE_EXPIRED,
    mt5.ORDER_STATE_REJECTED,
}


async def random_request(term: Terminal, rng: random.Random, filling: int) -> dict[str, object]:
    symbol = rng.choice(SYMBOLS)
    tick = await term.symbol_info_tick(symbol)
    info = await term.symbol_info(symbol)
    assert tick is not None and info is not None
    side = rng.randrange(2)
    volume = round(rng.choice([0.01, 0.1, 0.3, 1.0]), 2)
    kind = rng.random()
    positions = await term.positions_get() or ()
    orders = await term.orders_get() or ()
    if kind < 0.4:
        price = tick.ask if side == 0 else tick.bid
        return {
            "action": mt5.TRADE_ACTION_DEAL,
            "symbol": symbol,
            "volume": volume,
            "type": side,
            "price": price,
            "deviation": 30,
            "type_filling": filling,
            "magic": 1,
        }
    if kind < 0.6 and positions:
        p = rng.choice(positions)
        part = round(max(0.01, p.volume * rng.choice([0.5, 1.0])), 2)
        return {
            "action": mt5.TRADE_ACTION_DEAL,
            "symbol": p.symbol,
            "volume": part,
            "type": p.type ^ 1,
            "position": p.ticket,
            "price": p.price_current,
            "deviation": 30,
            "type_filling": filling,
        }
    if kind < 0.75:
        distance = (rng.randint(5, 300) + info.trade_stops_level) * info.point
        order_type = rng.choice([2, 3, 4, 5])
        base = tick.ask if order_type in (2, 4) else tick.bid
        sign = -1 if order_type in (2, 5) else 1
        return {
            "action": mt5.TRADE_ACTION_PENDING,
            "symbol": symbol,
            "volume": volume,
            "type": order_type,
            "price": round(base + sign * distance, info.digits),
            "type_filling": mt5.ORDER_FILLING_RETURN,
        }
    if kind < 0.85 and orders:
        return {"action": mt5.TRADE_ACTION_REMOVE, "order": rng.choice(orders).ticket}
    if positions:
        p = rng.choice(positions)
        pinfo = await term.symbol_info(p.symbol)
        assert pinfo is not None
        d = (rng.randint(20, 400) + pinfo.trade_stops_level) * pinfo.point
        sl = p.price_current - d if p.type == 0 else p.price_current + d
        return {
            "action": mt5.TRADE_ACTION_SLTP,
            "symbol": p.symbol,
            "position": p.ticket,
            "sl": round(sl, pinfo.digits),
            "tp": 0.0,
        }
    return {"action": mt5.TRADE_ACTION_REMOVE, "order": 1}


async def check_books(term: Terminal, deposit: float) -> None:
    info = await term.account_info()
    positions = await term.positions_get()
    assert info is not None and positions is not None
    assert info.equity == pytest.approx(info.balance + info.credit + info.profit, abs=0.02)
    assert info.profit == pytest.approx(sum(p.profit + p.swap for p in positions), abs=0.05)
    assert info.margin_free == pytest.approx(info.equity - info.margin, abs=0.02)
    assert all(p.volume > 0 for p in positions)
    deals = await term.history_deals_get(0, 4_000_000_000) or ()
    assert [d.ticket for d in deals] == sorted({d.ticket for d in deals})
    booked = sum(d.profit + d.commission + d.swap for d in deals)
    assert info.balance == pytest.approx(booked, abs=0.05) and deals[0].profit == deposit
    history = await term.history_orders_get(0, 4_000_000_000) or ()
    assert all(o.state in TERMINAL_STATES and o.time_done > 0 for o in history)
    assert await term.positions_total() == len(positions)


@pytest.mark.parametrize(
    ("server", "seed"), [("MTRobot-Demo", 1), ("Northwind-Live", 2), ("MTRobot-Demo", 3)]
)
async def test_random_sessions_keep_the_books_consistent(server: str, seed: int) -> None:
    rng = random.Random(seed)
    async with sim_harness(start=START, tcp=False) as sim:
        login = await sim.admin.create_account(
            server=server, password="Master-pass-1", investor_password="Inv-pass-1", balance=50_000.0
        )
        term = sim.terminal()
        assert await term.initialize(login=login, password="Master-pass-1", server=server)
        filling = mt5.ORDER_FILLING_IOC if server == "Northwind-Live" else mt5.ORDER_FILLING_FOK
        codes: set[int] = set()
        for step in range(150):
            result = await term.order_send(await random_request(term, rng, filling))
            assert result is not None, await term.last_error()
            codes.add(result.retcode)
            if step % 10 == 9:
                await sim.admin.advance_clock(seconds=rng.randint(30, 900))
                await check_books(term, 50_000.0)
        await check_books(term, 50_000.0)
        assert mt5.TRADE_RETCODE_DONE in codes and mt5.TRADE_RETCODE_TOO_MANY_REQUESTS not in codes
