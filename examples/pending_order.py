"""Place a Buy Limit below the market, find it among the active orders, then remove it.

mtrobot mt5 run examples/pending_order.py
"""

import MetaTrader5 as mt5

SYMBOL = "USDJPY"

if not mt5.initialize():
    print("initialize() failed, error code =", mt5.last_error())
    quit()

mt5.symbol_select(SYMBOL, True)
info = mt5.symbol_info(SYMBOL)
tick = mt5.symbol_info_tick(SYMBOL)
price = round(tick.ask - 500 * info.point, info.digits)

request = {
    "action": mt5.TRADE_ACTION_PENDING,
    "symbol": SYMBOL,
    "volume": 0.2,
    "type": mt5.ORDER_TYPE_BUY_LIMIT,
    "price": price,
    "sl": round(price - 300 * info.point, info.digits),
    "tp": round(price + 600 * info.point, info.digits),
    "magic": 1001,
    "comment": "limit example",
    "type_time": mt5.ORDER_TIME_GTC,
    "type_filling": mt5.ORDER_FILLING_RETURN,
}
check = mt5.order_check(request)
print("order_check:", check.retcode, check.comment)
result = mt5.order_send(request)
if result is None:
    print("order_send failed:", mt5.last_error())
    quit()
print("placed: retcode={} order={} price={}".format(result.retcode, result.order, price))

orders = mt5.orders_get(symbol=SYMBOL)
print("active orders on {}: {}".format(SYMBOL, len(orders)))
for order in orders:
    print(
        "  #{} type={} volume={} price_open={} state={}".format(
            order.ticket, order.type, order.volume_initial, order.price_open, order.state
        )
    )

removed = mt5.order_send({"action": mt5.TRADE_ACTION_REMOVE, "order": result.order})
print("remove: retcode={} ({})".format(removed.retcode, removed.comment))
print("active orders left:", mt5.orders_total())
history = mt5.history_orders_get(ticket=result.order)
print("in history with state", history[0].state, "(ORDER_STATE_CANCELED =", mt5.ORDER_STATE_CANCELED, ")")
mt5.shutdown()
