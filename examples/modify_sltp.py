"""Open a position without stops, then set and move its SL/TP with TRADE_ACTION_SLTP.

mtrobot mt5 run examples/modify_sltp.py
"""

import MetaTrader5 as mt5

SYMBOL = "GBPUSD"

if not mt5.initialize():
    print("initialize() failed, error code =", mt5.last_error())
    quit()

result = mt5.Sell(SYMBOL, 0.1)
print("sell:", result.retcode, result.comment, "ticket", result.order)
position = mt5.positions_get(ticket=result.order)[0]
point = mt5.symbol_info(SYMBOL).point

for step, distance in enumerate((200, 100), start=1):
    request = {
        "action": mt5.TRADE_ACTION_SLTP,
        "symbol": SYMBOL,
        "position": position.ticket,
        "sl": position.price_open + distance * point,
        "tp": position.price_open - 2 * distance * point,
    }
    answer = mt5.order_send(request)
    now = mt5.positions_get(ticket=position.ticket)[0]
    print("modify {}: retcode={} sl={} tp={}".format(step, answer.retcode, now.sl, now.tp))

same = mt5.order_send(
    {
        "action": mt5.TRADE_ACTION_SLTP,
        "symbol": SYMBOL,
        "position": position.ticket,
        "sl": now.sl,
        "tp": now.tp,
    }
)
print("unchanged levels: retcode={} ({})".format(same.retcode, same.comment))
print("close:", mt5.Close(SYMBOL, ticket=position.ticket))
mt5.shutdown()
