"""Many terminals at once over TCP: every order is answered once, every account's books add up."""

from __future__ import annotations

import asyncio
import datetime as dt

from mtrobot.broker import constants as mt5
from mtrobot.sim.harness import SimHarness, sim_harness

START = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)
CLIENTS, ORDERS = 30, 15


async def trader(sim: SimHarness, index: int) -> tuple[int, list[int]]:
    server = ("MTRobot-Demo", "Northwind-Live")[index % 2]
    login = await sim.admin.create_account(
        server=server, password=f"Master-pass-{index}", investor_password=f"Inv-pass-{index}"
    )
    term = sim.terminal(call_timeout=20)
    assert await term.initialize(login=login, password=f"Master-pass-{index}", server=server)
    codes = []
    for n in range(ORDERS):
        tick = await term.symbol_info_tick("EURUSD")
        assert tick is not None
        side = (index + n) % 2
        result = await term.order_send(
            {
                "action": mt5.TRADE_ACTION_DEAL,
                "symbol": "EURUSD",
                "volume": 0.01,
                "type": side,
                "price": tick.ask if side == 0 else tick.bid,
                "deviation": 50,
                "type_filling": mt5.ORDER_FILLING_IOC,
                "magic": index,
                "comment": f"c{index}-{n}",
            }
        )
        assert result is not None, await term.last_error()
        codes.append(result.retcode)
    deals = await term.history_deals_get(0, 4_000_000_000)
    assert deals is not None
    assert len([d for d in deals if d.type in (mt5.DEAL_TYPE_BUY, mt5.DEAL_TYPE_SELL)]) == ORDERS
    assert {d.magic for d in deals if d.order} == {index}
    await term.shutdown()
    return login, codes


async def test_thirty_terminals_trading_at_once_are_each_served_exactly_once() -> None:
    async with sim_harness(start=START, tcp=True) as sim:
        results = await asyncio.gather(*(trader(sim, i) for i in range(CLIENTS)))
        assert len({login for login, _ in results}) == CLIENTS
        assert all(codes == [mt5.TRADE_RETCODE_DONE] * ORDERS for _, codes in results)
        info = await sim.admin.info()
        assert sum(s["sessions"] for s in info["servers"]) == 0
