"""Open a market position with SL and TP, then close it by ticket.

Written for the official MetaTrader5 package; run it unchanged on the simulator with
    mtrobot mt5 run examples/market_sl_tp_close.py [SYMBOL]
"""

import sys
import time

import MetaTrader5 as mt5

symbol = sys.argv[1] if len(sys.argv) > 1 else "EURUSD"

if not mt5.initialize():
    print("initialize() failed, error code =", mt5.last_error())
    quit()

account = mt5.account_info()
print(f"account {account.login} on {account.server}, balance {account.balance:.2f} {account.currency}")

info = mt5.symbol_info(symbol)
if info is None:
    print(symbol, "not found, can not call order_check()")
    mt5.shutdown()
    quit()
if not info.visible and not mt5.symbol_select(symbol, True):
    print("symbol_select({}) failed, exit".format(symbol))
    mt5.shutdown()
    quit()

lot = 0.1
point = info.point
price = mt5.symbol_info_tick(symbol).ask
deviation = 20
request = {
    "action": mt5.TRADE_ACTION_DEAL,
    "symbol": symbol,
    "volume": lot,
    "type": mt5.ORDER_TYPE_BUY,
    "price": price,
    "sl": price - 100 * point,
    "tp": price + 100 * point,
    "deviation": deviation,
    "magic": 234000,
    "comment": "python script open",
    "type_time": mt5.ORDER_TIME_GTC,
    "type_filling": mt5.ORDER_FILLING_FOK,
}
result = mt5.order_send(request)
print("1. order_send(): by {} {} lots at {} with deviation={} points".format(symbol, lot, price, deviation))
if result.retcode != mt5.TRADE_RETCODE_DONE:
    print("2. order_send failed, retcode={}".format(result.retcode))
    result_dict = result._asdict()
    for field in result_dict.keys():
        print("   {}={}".format(field, result_dict[field]))
    mt5.shutdown()
    quit()

print("2. order_send done, ", result)
print("   opened position with POSITION_TICKET={}".format(result.order))
position = mt5.positions_get(ticket=result.order)[0]
print("   position sl={} tp={} (digits {})".format(position.sl, position.tp, info.digits))
time.sleep(1)

position_id = result.order
price = mt5.symbol_info_tick(symbol).bid
request = {
    "action": mt5.TRADE_ACTION_DEAL,
    "symbol": symbol,
    "volume": lot,
    "type": mt5.ORDER_TYPE_SELL,
    "position": position_id,
    "price": price,
    "deviation": deviation,
    "magic": 234000,
    "comment": "python script close",
    "type_time": mt5.ORDER_TIME_GTC,
    "type_filling": mt5.ORDER_FILLING_FOK,
}
result = mt5.order_send(request)
print("3. close position #{}: sell {} {} lots at {}".format(position_id, symbol, lot, price))
if result.retcode != mt5.TRADE_RETCODE_DONE:
    print("4. order_send failed, retcode={}".format(result.retcode))
else:
    print("4. position #{} closed, deal {}".format(position_id, result.deal))
    deals = mt5.history_deals_get(position=position_id)
    print("   deals of the position:", len(deals), "profit", round(sum(d.profit for d in deals), 2))

print("open positions:", mt5.positions_total())
mt5.shutdown()
