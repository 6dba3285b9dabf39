"""Pull bars and ticks into numpy: the last 100 H1 bars, bars of a past year, the last hour of ticks.

mtrobot mt5 run examples/rates_ticks_numpy.py
"""

from datetime import datetime, timedelta, timezone

import numpy as np

import MetaTrader5 as mt5

if not mt5.initialize():
    print("initialize() failed, error code =", mt5.last_error())
    quit()

rates = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, 100)
print("H1 bars:", len(rates), "fields:", rates.dtype.names)
closes = rates["close"]
print("mean close {:.5f}, highest high {:.5f}".format(np.mean(closes), np.max(rates["high"])))
sma = np.convolve(closes, np.ones(20) / 20, mode="valid")
print("SMA(20) values:", len(sma))

utc_from = datetime(2022, 1, 10, tzinfo=timezone.utc)
old = mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_D1, utc_from, 10)
print("D1 bars up to 2022-01-10:", 0 if old is None else len(old))
if old is not None and len(old):
    print("first:", datetime.fromtimestamp(int(old["time"][0]), tz=timezone.utc).date())

last_tick = mt5.symbol_info_tick("EURUSD")
until = datetime.fromtimestamp(last_tick.time, tz=timezone.utc)
ticks = mt5.copy_ticks_range("EURUSD", until - timedelta(hours=1), until, mt5.COPY_TICKS_ALL)
print(
    "ticks in the last hour:",
    len(ticks),
    "dtype ok:",
    ticks.dtype.names == ("time", "bid", "ask", "last", "volume", "time_msc", "flags", "volume_real"),
)
if len(ticks):
    spread = (ticks["ask"] - ticks["bid"]) / mt5.symbol_info("EURUSD").point
    print("median spread in points:", float(np.median(spread)))
mt5.shutdown()
