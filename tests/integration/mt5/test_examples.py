"""The example scripts in examples/, unmodified MetaTrader5 scripts, each run under ``mtrobot mt5 run`` as a
trader would run it (a real process, no MetaTrader5 package installed), output checked line by line."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
MTROBOT = Path(sys.executable).with_name("mtrobot")
TIMEOUT_S = 60


def run(script: Path, *args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTROBOT_")}
    env["MTROBOT_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [str(MTROBOT), "mt5", "run", str(script), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
        cwd=str(data_dir),
        check=False,
    )


def lines_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_no_metatrader5_package_is_installed() -> None:
    assert importlib.util.find_spec("MetaTrader5") is None


def test_market_position_with_sl_tp_closed_by_ticket(data_dir: Path) -> None:
    out = lines_of(run(EXAMPLES / "market_sl_tp_close.py", "EURUSD", "--always-open", data_dir=data_dir))
    assert re.fullmatch(r"account \d+ on MTRobot-Demo, balance 10000\.00 USD", out[0])
    assert out[2].startswith("2. order_send done,  OrderSendResult(retcode=10009,")
    ticket = re.fullmatch(r"   opened position with POSITION_TICKET=(\d+)", out[3])
    assert ticket is not None
    assert re.fullmatch(r"   position sl=1\.\d{1,5} tp=1\.\d{1,5} \(digits 5\)", out[4])  # normalised
    assert out[6] == f"4. position #{ticket.group(1)} closed, deal {int(out[6].split()[-1])}"
    assert re.fullmatch(r"   deals of the position: 2 profit -?\d+\.\d+", out[7])
    assert out[-1] == "open positions: 0"


def test_pending_order_placed_and_removed(data_dir: Path) -> None:
    out = lines_of(run(EXAMPLES / "pending_order.py", "--always-open", data_dir=data_dir))
    assert out[0] == "order_check: 0 Done"
    placed = re.fullmatch(r"placed: retcode=10009 order=(\d+) price=1\d\d\.\d+", out[1])
    assert placed is not None
    assert out[2] == "active orders on USDJPY: 1"
    assert out[3].startswith(f"  #{placed.group(1)} type=2 volume=0.2 price_open=") and out[3].endswith(
        "state=1"
    )
    assert out[4:] == [
        "remove: retcode=10009 (Request executed)",
        "active orders left: 0",
        "in history with state 2 (ORDER_STATE_CANCELED = 2 )",
    ]


def test_sl_tp_modified_twice_then_unchanged(data_dir: Path) -> None:
    out = lines_of(run(EXAMPLES / "modify_sltp.py", "--always-open", data_dir=data_dir))
    assert re.fullmatch(r"sell: 10009 Request executed ticket \d+", out[0])
    first, second = (re.fullmatch(r"modify \d: retcode=10009 sl=(\S+) tp=(\S+)", line) for line in out[1:3])
    assert first is not None and second is not None
    assert float(second.group(1)) < float(first.group(1)) and float(second.group(2)) > float(first.group(2))
    assert all(len(value.split(".")[1]) <= 5 for value in (*first.groups(), *second.groups()))
    assert out[3:] == ["unchanged levels: retcode=10025 (No changes)", "close: True"]


def test_positions_orders_and_deals_read_with_group_masks(data_dir: Path) -> None:
    out = lines_of(run(EXAMPLES / "read_account.py", "--always-open", data_dir=data_dir))
    values = dict(line.split(": ", 1) for line in out if ": " in line)
    assert int(values["symbols"]) >= 20
    assert "EURUSD" not in values["symbols without USD"] and "'EURJPY'" in values["symbols without USD"]
    assert values["positions"] == "4" and values["positions on *USD*"] == "4"
    assert values["positions except *EUR*"] == "['USDJPY', 'XAUUSD']"
    assert values["EURUSD positions"] == "[('buy', 0.01), ('sell', 0.02)]"
    assert values["orders"] == "()"
    assert values["deals on *EUR* in the last days"] == "2"
    assert values["gold deals"] == "[('XAUUSD', 0.01, 0)]"
    assert values["history orders"] == "4"
    assert values["positions after closing"] == "0"


def test_rates_and_ticks_into_numpy_reaching_back_to_2022(data_dir: Path) -> None:
    out = lines_of(run(EXAMPLES / "rates_ticks_numpy.py", "--always-open", data_dir=data_dir))
    values = dict(line.split(": ", 1) for line in out if ": " in line)
    assert values["H1 bars"].startswith("100 fields: ('time', 'open', 'high', 'low', 'close', 'tick_volume'")
    assert values["SMA(20) values"] == "81"
    assert values["D1 bars up to 2022-01-10"] == "10"
    assert values["first"].startswith("2021-12-") or values["first"].startswith("2022-01-")
    ticks, _, dtype_ok = values["ticks in the last hour"].partition(" dtype ok: ")
    assert int(ticks) >= 200 and dtype_ok == "True"


def test_the_depth_of_market_polled_as_the_documentation_shows(data_dir: Path) -> None:
    out = lines_of(run(EXAMPLES / "market_book.py", "--always-open", data_dir=data_dir))
    assert out[0] == "MetaTrader5 package version: 5.0.6231"
    snapshots = [line for line in out if line.startswith("snapshot ")]
    assert len(snapshots) == 3
    for line in snapshots:
        found = re.fullmatch(
            r"snapshot \d: 20 levels, 10 sells from (\S+) down to (\S+), 10 buys from (\S+) down to (\S+)",
            line,
        )
        assert found is not None
        high, best_offer, best_bid, low = (float(v) for v in found.groups())
        assert high > best_offer > best_bid > low
    assert re.fullmatch(
        r"  best offer: \{'type': 1, 'price': \S+, 'volume': \d+, 'volume_dbl': \S+\}", out[2]
    )


def test_bars_into_a_pandas_dataframe_as_the_documentation_shows(data_dir: Path) -> None:
    pytest.importorskip("pandas")
    out = lines_of(run(EXAMPLES / "rates_pandas.py", "--always-open", data_dir=data_dir))
    assert out[0] == "Display each element of obtained data in a new line"
    assert out.index("Display dataframe with data") == 5
    assert out[6].split() == ["time", "open", "high", "low", "close", "tick_volume", "spread", "real_volume"]
    assert out[-1] == "rows: 10 last: 2022-01-10 00:00:00"


def test_a_script_error_and_exit_codes_come_back(data_dir: Path) -> None:
    script = data_dir / "fails.py"
    script.write_text("import sys\nimport MetaTrader5 as mt5\nprint(mt5.last_error())\nsys.exit(3)\n")
    result = run(script, data_dir=data_dir)
    assert result.returncode == 3 and result.stdout == "(1, 'Success')\n"
    script.write_text("import MetaTrader5\nraise RuntimeError('boom')\n")
    result = run(script, data_dir=data_dir)
    assert result.returncode == 1 and "RuntimeError: boom" in result.stderr


def test_a_script_with_its_real_brokers_credentials_gets_the_demo_account(data_dir: Path) -> None:
    script = data_dir / "real.py"
    script.write_text(
        "import MetaTrader5 as mt5\n"
        "print(mt5.initialize(login=31415926, password='my-real-pass', server='SomeBroker-Live'))\n"
        "print(mt5.account_info().server)\n"
        "ok = mt5.initialize(login=31415926, password='wrong-pass', server='MTRobot-Demo')\n"
        "print(ok, mt5.last_error())\n"
    )
    result = run(script, data_dir=data_dir)
    assert lines_of(result) == ["True", "MTRobot-Demo", "False (-6, 'Terminal: Authorization failed')"]
    assert "'SomeBroker-Live' is not a simulated server: the demo account stands in for it" in result.stderr


REPLAY = """<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>
{rows}
"""


@pytest.mark.parametrize("name", ["EURUSD_ticks.csv"])
def test_replay_feeds_the_script_the_files_prices_in_real_time(data_dir: Path, name: str) -> None:
    rows = [
        f"2024.01.03\t10:00:{s:02d}.000\t{1.10000 + s / 10000:.5f}\t{1.10010 + s / 10000:.5f}\t\t\t6"
        for s in range(40)
    ]
    (data_dir / name).write_text(REPLAY.format(rows="\n".join(rows)))
    script = data_dir / "watch.py"
    script.write_text(
        "import time\nimport MetaTrader5 as mt5\nmt5.initialize()\n"
        "first = mt5.symbol_info_tick('EURUSD')\ntime.sleep(2.5)\nlater = mt5.symbol_info_tick('EURUSD')\n"
        "print(first.bid, later.bid, later.time - first.time >= 2)\n"
    )
    result = run(script, "--replay", str(data_dir / name), data_dir=data_dir)
    first, later, moved = lines_of(result)[0].split()
    assert 1.1 <= float(first) < float(later) <= 1.104 and moved == "True"
    assert "replaying EURUSD_ticks.csv as EURUSD" in result.stderr
