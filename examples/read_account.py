"""Read positions, orders and deals, filtered with group masks.

mtrobot mt5 run examples/read_account.py
"""

from datetime import datetime, timedelta

import MetaTrader5 as mt5

if not mt5.initialize():
    print("initialize() failed, error code =", mt5.last_error())
    quit()

for symbol in ("EURUSD", "USDJPY", "XAUUSD"):
    mt5.symbol_select(symbol, True)
    mt5.Buy(symbol, 0.01)
mt5.Sell("EURUSD", 0.02)

print("symbols:", mt5.symbols_total())
print("symbols without USD:", [s.name for s in mt5.symbols_get(group="*,!*USD*")])
print("positions:", mt5.positions_total())
usd = mt5.positions_get(group="*USD*")
print("positions on *USD*:", len(usd))
no_eur = mt5.positions_get(group="*,!*EUR*")
print("positions except *EUR*:", sorted(p.symbol for p in no_eur))
eurusd = mt5.positions_get(symbol="EURUSD")
print("EURUSD positions:", [("buy" if p.type == mt5.POSITION_TYPE_BUY else "sell", p.volume) for p in eurusd])
print("orders:", mt5.orders_get())

date_to = datetime.now() + timedelta(days=1)
date_from = date_to - timedelta(days=3)
deals = mt5.history_deals_get(date_from, date_to, group="*EUR*")
print("deals on *EUR* in the last days:", len(deals))
if deals is None:
    print("no deals, error code={}".format(mt5.last_error()))
gold = mt5.history_deals_get(date_from, date_to, group="XAU*")
print("gold deals:", [(d.symbol, d.volume, d.entry) for d in gold])
print("history orders:", mt5.history_orders_total(date_from, date_to))
for position in mt5.positions_get():
    mt5.Close(position.symbol, ticket=position.ticket)
print("positions after closing:", mt5.positions_total())
mt5.shutdown()
