"""Bars into a pandas DataFrame, as the official documentation's copy_rates_from example does.

mtrobot mt5 run examples/rates_pandas.py
"""

from datetime import datetime, timezone

import pandas as pd

import MetaTrader5 as mt5

pd.set_option("display.max_columns", 500)
pd.set_option("display.width", 1500)

if not mt5.initialize():
    print("initialize() failed, error code =", mt5.last_error())
    quit()

utc_from = datetime(2022, 1, 10, tzinfo=timezone.utc)
rates = mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_H4, utc_from, 10)
mt5.shutdown()

print("Display each element of obtained data in a new line")
for rate in rates[:3]:
    print(rate)

rates_frame = pd.DataFrame(rates)
rates_frame["time"] = pd.to_datetime(rates_frame["time"], unit="s")
print("\nDisplay dataframe with data")
print(rates_frame)
print("rows:", len(rates_frame), "last:", rates_frame["time"].iloc[-1])
