"""Depth of market, polled as the official documentation shows (market_book_add / get / release).

mtrobot mt5 run examples/market_book.py
"""

import time

import MetaTrader5 as mt5

print("MetaTrader5 package version:", mt5.__version__)
if not mt5.initialize():
    print("initialize() failed, error code =", mt5.last_error())
    quit()

if mt5.market_book_add("EURUSD"):
    for i in range(3):
        items = mt5.market_book_get("EURUSD")
        sells = [item for item in items if item.type == mt5.BOOK_TYPE_SELL]
        buys = [item for item in items if item.type == mt5.BOOK_TYPE_BUY]
        print(
            "snapshot {}: {} levels, {} sells from {} down to {}, {} buys from {} down to {}".format(
                i,
                len(items),
                len(sells),
                sells[0].price,
                sells[-1].price,
                len(buys),
                buys[0].price,
                buys[-1].price,
            )
        )
        print("  best offer:", sells[-1]._asdict())
        time.sleep(0.2)
    mt5.market_book_release("EURUSD")
else:
    print("mt5.market_book_add('EURUSD') failed, error code =", mt5.last_error())
mt5.shutdown()
