"""Pure pieces of the simulator: server time zones, the market schedule, group masks, margin maths."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mtrobot.broker import constants as mt5
from mtrobot.core.errors import ConfigError
from mtrobot.sim.clock import ServerZone, VirtualClock
from mtrobot.sim.config import ServerConfig, default_config
from mtrobot.sim.money import margin_in_margin_currency
from mtrobot.sim.schedule import Schedule, weekday
from mtrobot.sim.views import matches_group


def ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)


def test_fx_offset_remembered_per_hour_is_zoneinfo_s_at_every_quarter_hour_around_both_changes() -> None:
    from zoneinfo import ZoneInfo

    zone = ServerZone("fx")
    new_york = ZoneInfo("America/New_York")
    # Around the spring and the autumn change of 2026, forwards and then backwards (the remembered hour
    # must never answer for another one).
    instants = [ms(2026, 3, 7) + k * 900_000 + 7 for k in range(4 * 24 * 3)]
    instants += [ms(2026, 10, 31) + k * 900_000 + 7 for k in range(4 * 24 * 3)]
    for utc_ms in instants + instants[::-1]:
        instant = dt.datetime.fromtimestamp(utc_ms / 1000, dt.UTC)
        offset = instant.astimezone(new_york).utcoffset()
        assert offset is not None
        expected = int((offset + dt.timedelta(hours=7)).total_seconds() * 1000)
        assert zone.offset_ms(utc_ms) == expected, instant


def test_fx_server_time_is_new_york_plus_seven_hours_across_us_dst() -> None:
    zone = ServerZone("fx")
    assert zone.offset_ms(ms(2026, 1, 15, 12)) == 2 * 3_600_000  # winter: GMT+2
    assert zone.offset_ms(ms(2026, 7, 15, 12)) == 3 * 3_600_000  # US summer: GMT+3
    assert zone.offset_ms(ms(2026, 3, 10, 12)) == 3 * 3_600_000  # US DST already, EU not yet


@pytest.mark.parametrize(("spec", "hours"), [("+02:00", 2), ("UTC", 0), ("UTC-5", -5), ("GMT+3", 3)])
def test_fixed_offsets_are_understood(spec: str, hours: int) -> None:
    assert ServerZone(spec).offset_ms(0) == hours * 3_600_000


def test_a_nonsense_timezone_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="timezone"):
        ServerZone("Mars/Olympus")


def test_the_schedule_closes_for_the_daily_break_and_the_weekend() -> None:
    config: ServerConfig = default_config().servers[0]
    schedule = Schedule(config)
    wednesday_noon = ms(2026, 3, 4, 12)
    assert weekday(wednesday_noon) == 3 and schedule.is_open(wednesday_noon)
    assert not schedule.is_open(ms(2026, 3, 5, 0, 3))  # 00:03 daily break
    assert schedule.is_open(ms(2026, 3, 5, 0, 5))
    assert not schedule.is_open(ms(2026, 3, 6, 23, 56))  # Friday after the close
    assert not schedule.is_open(ms(2026, 3, 8, 12))  # Sunday
    assert schedule.is_open(ms(2026, 3, 9, 0, 6))  # Monday after the break


def test_a_virtual_clock_moves_only_when_told() -> None:
    clock = VirtualClock(dt.datetime(2026, 3, 4, tzinfo=dt.UTC))
    start = clock.now_ms()
    assert clock.now_ms() == start
    assert clock.advance(1.5) == start + 1500
    with pytest.raises(ValueError):
        clock.advance(-1)


@pytest.mark.parametrize(
    ("name", "group", "expected"),
    [
        ("EURUSD", "*", True),
        ("EURUSD", "*USD*", True),
        ("EURUSD", "*,!*EUR*", False),
        ("GBPUSD", "*,!*EUR*", True),
        ("EURUSD", "!*EUR*,*", True),
        ("XAUUSD", "EUR*,GBP*", False),
        ("eurusd", "EUR*", True),
    ],
)
def test_group_masks_apply_left_to_right(name: str, group: str, expected: bool) -> None:
    assert matches_group(name, group) is expected


def test_margin_formulas_follow_the_calc_mode() -> None:
    fx, gold, index = (default_config().servers[0].symbol(n) for n in ("EURUSD", "XAUUSD", "US500"))
    assert fx is not None and gold is not None and index is not None
    assert margin_in_margin_currency(fx, 1.0, 1.1, 100) == pytest.approx(1000.0)
    assert gold.calc_mode == mt5.SYMBOL_CALC_MODE_CFDLEVERAGE
    assert margin_in_margin_currency(gold, 1.0, 2000.0, 100) == pytest.approx(2000.0)
    assert margin_in_margin_currency(index, 1.0, 5000.0, 100) == pytest.approx(250.0)


def test_the_default_brokers_differ_where_real_brokers_differ() -> None:
    demo, live = default_config().servers
    assert (demo.name, live.name) == ("MTRobot-Demo", "Northwind-Live")
    assert demo.margin_mode == mt5.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
    assert live.margin_mode == mt5.ACCOUNT_MARGIN_MODE_RETAIL_NETTING
    assert {s.execution for s in demo.symbols} == {mt5.SYMBOL_TRADE_EXECUTION_INSTANT}
    assert {s.execution for s in live.symbols} == {mt5.SYMBOL_TRADE_EXECUTION_MARKET}
    for server in (demo, live):
        assert (server.maintenance_start, server.maintenance_minutes) == ("00:00", 5)
        assert server.inactivity_timeout_s == 30.0 and server.comment_length == 16
        assert {"EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US500"} <= {s.name for s in server.symbols}


def test_mtrobot_up_starts_the_simbroker_first() -> None:
    from mtrobot.launcher import UpOptions, embedded_parts
    from mtrobot.settings import Settings

    parts = embedded_parts(Settings(), UpOptions(), "nats://127.0.0.1:1")
    assert parts[0].name == "simbroker" and parts[0].where.endswith("simbroker.json")


def test_account_passwords_are_salted_hashes_and_older_hashes_still_verify() -> None:
    import hashlib

    from mtrobot.sim.state import check_password, hash_password

    first, second = hash_password("Master-pass-1"), hash_password("Master-pass-1")
    assert first != second and "Master-pass-1" not in first
    assert check_password("Master-pass-1", first) and not check_password("Master-pass-2", first)
    salt = bytes(range(16))
    legacy = f"{salt.hex()}:{hashlib.scrypt(b'Old-pass-1', salt=salt, n=2**12, r=8, p=1).hex()}"
    assert check_password("Old-pass-1", legacy) and not check_password("Old-pass-2", legacy)


def test_a_broker_config_file_is_validated_naming_the_field(tmp_path: Path) -> None:
    from mtrobot.sim.service import load_config, parse_replay

    good = tmp_path / "broker.json"
    good.write_text(default_config(seed=5).model_dump_json())
    assert load_config(good, None).seed == 5 and load_config(good, 9).seed == 9
    bad = tmp_path / "bad.json"
    data = default_config().model_dump(mode="json")
    data["servers"][0]["symbols"][0]["digits"] = 42
    bad.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="digits"):
        load_config(bad, None)
    assert parse_replay("MTRobot-Demo:EURUSD=/data/eurusd.csv")[:2] == ("MTRobot-Demo", "EURUSD")
    with pytest.raises(ConfigError, match="SERVER:SYMBOL=FILE"):
        parse_replay("EURUSD.csv")
