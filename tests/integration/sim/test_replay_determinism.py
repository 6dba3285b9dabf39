"""A seeded run on a virtual clock, replayed, gives the identical deals (and a different seed does not)."""

from __future__ import annotations

import datetime as dt

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import TradeDeal
from mtrobot.broker.terminal import Terminal
from mtrobot.sim.admin import LocalAdmin, SimAdmin
from mtrobot.sim.config import default_config
from mtrobot.sim.harness import sim_harness

START = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)


async def scripted_run(seed: int, server: str, tcp: bool = False) -> tuple[TradeDeal, ...]:
    """Two simulated hours of a simple robot: orders with SL/TP, pending orders, closes, on every symbol."""
    async with sim_harness(start=START, config=default_config(seed=seed), tcp=tcp) as sim:
        return await _script(sim.admin, sim.terminal(call_timeout=10), server)


async def _script(admin: LocalAdmin | SimAdmin, term: Terminal, server: str) -> tuple[TradeDeal, ...]:
    login = await admin.create_account(
        server=server, password="Master-pass-1", investor_password="Inv-pass-1"
    )
    assert await term.initialize(login=login, password="Master-pass-1", server=server)
    filling = mt5.ORDER_FILLING_IOC
    for step in range(24):
        symbol = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD")[step % 4]
        tick = await term.symbol_info_tick(symbol)
        info = await term.symbol_info(symbol)
        assert tick is not None and info is not None
        side = step % 2
        price = tick.ask if side == 0 else tick.bid
        distance = 60 * info.point + info.trade_stops_level * info.point
        sl = round(price - distance if side == 0 else price + distance, info.digits)
        tp = round(price + distance if side == 0 else price - distance, info.digits)
        await term.order_send(
            {
                "action": mt5.TRADE_ACTION_DEAL,
                "symbol": symbol,
                "volume": 0.1,
                "type": side,
                "price": price,
                "deviation": 50,
                "sl": sl,
                "tp": tp,
                "type_filling": filling,
                "magic": 11,
                "comment": f"step {step}",
            }
        )
        await term.order_send(
            {
                "action": mt5.TRADE_ACTION_PENDING,
                "symbol": symbol,
                "volume": 0.1,
                "type": mt5.ORDER_TYPE_BUY_LIMIT,
                "price": round(tick.ask - distance / 2, info.digits),
                "type_filling": mt5.ORDER_FILLING_RETURN,
                "magic": 12,
            }
        )
        if step % 6 == 5:
            for position in await term.positions_get() or ():
                await term.order_send(
                    {
                        "action": mt5.TRADE_ACTION_DEAL,
                        "symbol": position.symbol,
                        "volume": position.volume,
                        "type": position.type ^ 1,
                        "position": position.ticket,
                        "price": position.price_current,
                        "deviation": 50,
                        "type_filling": filling,
                    }
                )
        await admin.advance_clock(seconds=150)
    deals = await term.history_deals_get(0, 4_000_000_000)
    assert deals is not None
    return deals


async def test_a_seeded_run_replayed_gives_identical_deals() -> None:
    first = await scripted_run(7, "MTRobot-Demo")
    second = await scripted_run(7, "MTRobot-Demo", tcp=True)  # and the wire changes nothing
    assert len(first) > 30
    assert {d.reason for d in first} >= {mt5.DEAL_REASON_EXPERT, mt5.DEAL_REASON_SL, mt5.DEAL_REASON_TP}
    assert first == second


async def test_a_seeded_run_replays_identically_on_a_netting_server_with_slippage() -> None:
    assert await scripted_run(3, "Northwind-Live") == await scripted_run(3, "Northwind-Live")


async def test_another_seed_gives_other_prices_and_deals() -> None:
    assert await scripted_run(7, "MTRobot-Demo") != await scripted_run(8, "MTRobot-Demo")
