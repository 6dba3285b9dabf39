"""What every tick does on a trade server (MT5_REFERENCE.md 6.6 and 6.12).

Pending orders trigger (Buy Limit when Ask <= price, Sell Limit when Bid >= price, Buy Stop when Ask >=
price, Sell Stop when Bid <= price; stop-limit orders become limit orders), fill at the market with the
symbol's liquidity (a remainder waits for the next quote), re-checking margin at activation; SL and TP
close positions (long: Bid against the levels, short: Ask); then stop-out closes the worst position while the
margin level is at or below the stop-out level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import Tick
from mtrobot.sim.money import Leg
from mtrobot.sim.server import VOLUME_EPS, vround
from mtrobot.sim.state import Account, Order

if TYPE_CHECKING:
    from mtrobot.sim.server import TradeServer


def process_tick(server: TradeServer, symbol: str, tick: Tick) -> None:
    for account in server.accounts.values():
        if account.orders:
            for order in [o for o in account.orders.values() if o.symbol == symbol]:
                _order_on_tick(server, account, order, tick)
        if account.positions:
            exposed = [p for p in account.positions.values() if p.symbol == symbol]
            for position in exposed:
                _stops_on_tick(server, account, position.ticket, tick)
            if exposed:  # the margin level moves with this symbol's price
                _stop_out(server, account)


def _triggered(order: Order, tick: Tick) -> bool:
    price = order.price_open
    t = order.type
    if t in (mt5.ORDER_TYPE_BUY, mt5.ORDER_TYPE_SELL):
        return True  # the remainder of a RETURN market order
    if t == mt5.ORDER_TYPE_BUY_LIMIT:
        return tick.ask <= price
    if t == mt5.ORDER_TYPE_SELL_LIMIT:
        return tick.bid >= price
    if t in (mt5.ORDER_TYPE_BUY_STOP, mt5.ORDER_TYPE_BUY_STOP_LIMIT):
        return tick.ask >= price
    if t in (mt5.ORDER_TYPE_SELL_STOP, mt5.ORDER_TYPE_SELL_STOP_LIMIT):
        return tick.bid <= price
    return False


def _order_on_tick(server: TradeServer, account: Account, order: Order, tick: Tick) -> None:
    order.price_current = tick.ask if order.is_buy else tick.bid
    if not _triggered(order, tick):
        return
    if order.type == mt5.ORDER_TYPE_BUY_STOP_LIMIT:  # activation: becomes a Buy Limit at the stop-limit price
        order.type, order.price_open = mt5.ORDER_TYPE_BUY_LIMIT, order.price_stoplimit
        return
    if order.type == mt5.ORDER_TYPE_SELL_STOP_LIMIT:
        order.type, order.price_open = mt5.ORDER_TYPE_SELL_LIMIT, order.price_stoplimit
        return
    spec = server.specs[order.symbol]
    price = tick.ask if order.is_buy else tick.bid
    volume = vround(min(order.volume_current, spec.liquidity_lots))
    before = server.figures(account)
    after = server.figures(account, [Leg(order.symbol, order.is_buy, volume, price)])
    if after.margin > before.margin + 1e-9 and after.margin_free < 0:
        order.comment = order.comment or "[no money]"
        server.archive(account, order, mt5.ORDER_STATE_REJECTED)  # activation refused (10041 class)
        return
    server.fill(account, order, volume, price, mt5.DEAL_REASON_EXPERT)
    if order.sl or order.tp:
        for position in account.positions.values():
            if position.identifier == order.position_id and not (position.sl or position.tp):
                position.sl, position.tp = order.sl, order.tp
    if order.volume_current <= VOLUME_EPS:
        server.archive(account, order, mt5.ORDER_STATE_FILLED)
    else:
        order.state = mt5.ORDER_STATE_PARTIAL


def _stops_on_tick(server: TradeServer, account: Account, ticket: int, tick: Tick) -> None:
    position = account.positions.get(ticket)
    if position is None:
        return
    digits = server.specs[position.symbol].digits
    if position.is_buy:
        hit_sl = bool(position.sl) and tick.bid <= position.sl
        hit_tp = bool(position.tp) and tick.bid >= position.tp
    else:
        hit_sl = bool(position.sl) and tick.ask >= position.sl
        hit_tp = bool(position.tp) and tick.ask <= position.tp
    if hit_sl:
        server.close_position(account, position, mt5.DEAL_REASON_SL, f"[sl {position.sl:.{digits}f}]")
    elif hit_tp:
        server.close_position(account, position, mt5.DEAL_REASON_TP, f"[tp {position.tp:.{digits}f}]")


def _stop_out(server: TradeServer, account: Account) -> None:
    config = server.config
    while account.positions:
        fig = server.figures(account)
        if fig.margin <= 0:
            return
        if config.margin_so_mode == mt5.ACCOUNT_STOPOUT_MODE_PERCENT:
            breached, shown = fig.margin_level <= config.margin_stopout, f"{fig.margin_level:.2f}%"
        else:
            breached, shown = fig.equity <= config.margin_stopout, f"{fig.equity:.2f}"
        if not breached:
            return
        worst = min(account.positions.values(), key=lambda p: (p.profit, p.ticket))
        if server.quote(worst.symbol) is None:
            return
        server.close_position(account, worst, mt5.DEAL_REASON_SO, f"[so {shown}]")
