"""Replay of MetaTrader 5 bar and tick exports: prices, bars and fills follow the file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mtrobot.broker import constants as mt5
from mtrobot.broker.backends import open_terminal
from mtrobot.core.errors import ConfigError
from mtrobot.sim.admin import LocalAdmin
from mtrobot.sim.clock import ServerZone, VirtualClock
from mtrobot.sim.config import default_config
from mtrobot.sim.replay import read_export
from mtrobot.sim.service import build_broker

TICKS = """<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>
2026.03.04\t12:00:00.250\t1.10000\t1.10010\t\t\t6
2026.03.04\t12:00:01.500\t1.10005\t\t\t\t2
2026.03.04\t12:00:03.000\t\t1.10030\t\t\t4
2026.03.04\t12:01:10.000\t1.10100\t1.10110\t\t\t6
"""
BARS = """<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>
2026.03.04\t12:00:00\t1.20000\t1.20100\t1.19950\t1.20050\t100\t0\t10
2026.03.04\t12:01:00\t1.20050\t1.20060\t1.19900\t1.19920\t90\t0\t12
"""


def utc_for_server_time(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    server = dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)
    offset = ServerZone("fx").offset_ms(int(server.timestamp() * 1000))
    return server - dt.timedelta(milliseconds=offset)


def test_a_tick_export_carries_unchanged_fields_forward(tmp_path: Path) -> None:
    path = tmp_path / "EURUSD_ticks.csv"
    path.write_text(TICKS)
    ticks = read_export(path, 0.00001)
    assert [t[1:] for t in ticks] == [(1.1, 1.1001), (1.10005, 1.1001), (1.10005, 1.1003), (1.101, 1.1011)]
    assert ticks[0][0] % 1000 == 250


def test_a_bar_export_becomes_open_extremes_close_with_the_spread(tmp_path: Path) -> None:
    path = tmp_path / "EURUSD_M1.csv"
    path.write_text(BARS)
    ticks = read_export(path, 0.00001)
    assert [t[1] for t in ticks[:4]] == [1.2, 1.1995, 1.201, 1.2005]
    assert ticks[0][2] == pytest.approx(1.2001)


def test_a_file_that_is_not_an_export_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\nworld\n")
    with pytest.raises(ConfigError, match=r"notes\.txt"):
        read_export(path, 0.00001)


async def test_a_replayed_symbol_quotes_and_fills_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "EURUSD_ticks.csv"
    path.write_text(TICKS)
    clock = VirtualClock(utc_for_server_time(2026, 3, 4, 11, 59))
    broker = build_broker(default_config(), [f"MTRobot-Demo:EURUSD={path}"], clock)
    admin = LocalAdmin(broker)
    login = await admin.create_account(
        server="MTRobot-Demo", password="Master-pass-1", investor_password="Inv-pass-1"
    )
    term = open_terminal("sim-inprocess", broker=broker)
    assert await term.initialize(login=login, password="Master-pass-1", server="MTRobot-Demo")
    request = {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": 0.1,
        "type": 0,
        "price": 1.1,
        "deviation": 10,
    }
    early = await term.order_send(request)
    assert (
        early is not None and early.retcode == mt5.TRADE_RETCODE_PRICE_OFF
    )  # no quote before the file starts
    await admin.advance_clock(seconds=62)  # 12:00:02 server time
    tick = await term.symbol_info_tick("EURUSD")
    assert tick is not None and (tick.bid, tick.ask) == (1.10005, 1.1001)
    filled = await term.order_send({**request, "price": tick.ask})
    assert filled is not None and filled.retcode == mt5.TRADE_RETCODE_DONE and filled.price == 1.1001
    await admin.advance_clock(seconds=120)
    bars = await term.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 5)
    assert bars is not None and list(bars["close"]) == [1.10005, 1.101]
