"""``mtrobot simbroker`` as a real command: announces itself, serves terminals and the admin channel, stops
cleanly on SIGTERM."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mtrobot.broker import constants as mt5
from mtrobot.broker.backends import open_terminal
from mtrobot.sim.admin import AdminError, SimAdmin
from tests.e2e.proc_tools import mtrobot_command, wait_until


@contextlib.contextmanager
def _simbroker(
    env: dict[str, str], run_file: Path
) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any]]]:
    """A real ``mtrobot simbroker`` and what it announced once listening; killed if still running after."""
    proc = subprocess.Popen(
        mtrobot_command("simbroker", "--port", "0"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(run_file.exists, 20, "simbroker.json", proc)
        yield proc, json.loads(run_file.read_text())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_simbroker_announces_itself_serves_and_stops_on_sigterm(data_dir: Path) -> None:
    run_file = data_dir / "run" / "simbroker.json"
    env = dict(os.environ, MTROBOT_DATA_DIR=str(data_dir))
    with _simbroker(env, run_file) as (proc, info):
        assert info["host"] == "127.0.0.1" and info["port"] > 0
        assert {"MTRobot-Demo", "Northwind-Live"} <= set(info["servers"])
        assert stat.S_IMODE(run_file.stat().st_mode) == 0o600
        with pytest.raises(AdminError):
            await SimAdmin(info["host"], info["port"]).info()  # no token, no back office
        admin = SimAdmin.from_run_file(run_file)
        login = await admin.create_account(
            server="Northwind-Live", password="Master-pass-1", investor_password="Inv-pass-1", balance=5000.0
        )
        term = open_terminal("sim", host=info["host"], port=info["port"], call_timeout=5)
        assert await term.initialize(login=login, password="Master-pass-1", server="Northwind-Live")
        account = await term.account_info()
        assert (
            account is not None
            and account.balance == 5000.0
            and account.company == "Northwind Brokerage Corp"
        )
        tick = await term.symbol_info_tick("XAUUSD")
        assert tick is not None and tick.bid > 0
        symbols = await term.symbols_get("*")
        assert symbols is not None and {"EURUSD", "XAUUSD", "US500"} <= {s.name for s in symbols}
        result = await term.order_send(
            {
                "action": mt5.TRADE_ACTION_DEAL,
                "symbol": "EURUSD",
                "volume": 0.1,
                "type": mt5.ORDER_TYPE_BUY,
                "type_filling": mt5.ORDER_FILLING_IOC,
            }
        )
        assert result is not None and result.retcode == mt5.TRADE_RETCODE_DONE
        await term.shutdown()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert not run_file.exists()
    # The books were saved at the stop: the head and its history file, private.
    books = data_dir / "simbroker"
    history = (books / "state.history.jsonl").read_bytes()
    assert {stat.S_IMODE((books / n).stat().st_mode) for n in ("state.json", "state.history.jsonl")} == {
        0o600
    }
    assert b"Master-pass-1" not in history + (books / "state.json").read_bytes()
    # A second process restores them and appends what it adds to the same history.
    with _simbroker(env, run_file) as (proc, info):
        term = open_terminal("sim", host=info["host"], port=info["port"], call_timeout=5)
        assert await term.initialize(login=login, password="Master-pass-1", server="Northwind-Live")
        deals = await term.history_deals_get(0, 4_000_000_000)
        assert deals is not None and [d.order for d in deals][-1] == result.order  # the deposit, then the buy
        positions = await term.positions_get()
        assert positions is not None and len(positions) == 1
        closed = await term.order_send(
            {
                "action": mt5.TRADE_ACTION_DEAL,
                "symbol": "EURUSD",
                "volume": 0.1,
                "type": mt5.ORDER_TYPE_SELL,
                "position": positions[0].ticket,
                "type_filling": mt5.ORDER_FILLING_IOC,
            }
        )
        assert closed is not None and closed.retcode == mt5.TRADE_RETCODE_DONE
        await term.shutdown()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    again = (books / "state.history.jsonl").read_bytes()
    assert again.startswith(history) and len(again.splitlines()) == len(history.splitlines()) + 2


async def test_a_restarted_broker_keeps_its_books_and_resumes_prices(tmp_path: Path) -> None:
    from mtrobot.sim import persistence
    from mtrobot.sim.admin import LocalAdmin
    from mtrobot.sim.broker import SimBroker
    from mtrobot.sim.clock import VirtualClock

    noon = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)  # virtual: no tick may move the quote meanwhile
    first = SimBroker(clock=VirtualClock(noon))
    admin = LocalAdmin(first)
    login = await admin.create_account(
        server="MTRobot-Demo", password="Master-pass-1", investor_password="Inv-pass-1"
    )
    term = open_terminal("sim-inprocess", broker=first)
    assert await term.initialize(login=login, password="Master-pass-1", server="MTRobot-Demo")
    tick = await term.symbol_info_tick("EURUSD")
    assert tick is not None
    opened = await term.order_send(
        {
            "action": mt5.TRADE_ACTION_DEAL,
            "symbol": "EURUSD",
            "volume": 0.2,
            "type": mt5.ORDER_TYPE_BUY,
            "price": tick.ask,
            "deviation": 100,
        }
    )
    assert opened is not None and opened.retcode == mt5.TRADE_RETCODE_DONE
    await admin.set_quote(server="MTRobot-Demo", symbol="EURUSD", bid=1.2345)
    state = tmp_path / "state.json"
    persistence.save(first, state)
    assert stat.S_IMODE(state.stat().st_mode) == 0o600 and "Master-pass-1" not in state.read_text()

    second = SimBroker(clock=VirtualClock(noon + dt.timedelta(minutes=5)))
    assert persistence.load(second, state) == 1
    again = open_terminal("sim-inprocess", broker=second)
    assert await again.initialize(login=login, password="Master-pass-1", server="MTRobot-Demo")
    positions = await again.positions_get()
    assert positions is not None and [p.ticket for p in positions] == [opened.order]
    assert (await again.symbol_info_tick("EURUSD")).bid == 1.2345  # type: ignore[union-attr]
    deals = await again.history_deals_get(0, 4_000_000_000)
    assert deals is not None and len(deals) == 2
    new_login = await LocalAdmin(second).create_account(
        server="MTRobot-Demo", password="P-1234567", investor_password="I-1234567"
    )
    assert new_login != login
    following = await again.order_send(
        {
            "action": mt5.TRADE_ACTION_DEAL,
            "symbol": "EURUSD",
            "volume": 0.1,
            "type": mt5.ORDER_TYPE_SELL,
            "price": 1.2345,
            "deviation": 100,
        }
    )
    assert following is not None and following.order > opened.order and following.deal > opened.deal


@pytest.mark.parametrize("tcp", [True, False])
async def test_the_harness_gives_a_ready_broker_over_either_link(tcp: bool) -> None:
    from mtrobot.sim.harness import sim_harness

    async with sim_harness(start=dt.datetime(2026, 3, 4, 10, tzinfo=dt.UTC), tcp=tcp) as sim:
        login = await sim.admin.create_account(
            server="MTRobot-Demo", password="Master-pass-1", investor_password="Inv-pass-1"
        )
        term = sim.terminal(call_timeout=5)
        assert await term.initialize(login=login, password="Master-pass-1", server="MTRobot-Demo")
        assert sim.backend == ("sim" if tcp else "sim-inprocess")
        assert (await term.account_info()).login == login  # type: ignore[union-attr]
        await term.shutdown()


async def test_admin_operations_are_logged_without_secrets() -> None:
    from structlog.testing import capture_logs

    from mtrobot.sim.admin import LocalAdmin
    from mtrobot.sim.broker import SimBroker

    admin = LocalAdmin(SimBroker())
    with capture_logs() as entries:
        await admin.create_account(
            server="MTRobot-Demo", password="Secret-master-9", investor_password="Secret-inv-9"
        )
        await admin.reject_next(server="MTRobot-Demo", n=2, retcode=10012)
    assert [e.get("op") for e in entries if e["event"] == "simbroker admin"] == [
        "create_account",
        "reject_next",
    ]
    assert "Secret" not in repr(entries)
