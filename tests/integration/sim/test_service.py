"""``mtrobot simbroker`` as a real command: announces itself, serves terminals and the admin channel, stops
cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from mtrobot.broker import constants as mt5
from mtrobot.broker.backends import open_terminal
from mtrobot.sim.admin import AdminError, SimAdmin
from tests.e2e.proc_tools import mtrobot_command, wait_until


async def test_simbroker_announces_itself_serves_and_stops_on_sigterm(data_dir: Path) -> None:
    run_file = data_dir / "run" / "simbroker.json"
    env = dict(os.environ, MTROBOT_DATA_DIR=str(data_dir))
    proc = subprocess.Popen(
        mtrobot_command("simbroker", "--port", "0"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(run_file.exists, 20, "simbroker.json", proc)
        info = json.loads(run_file.read_text())
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
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
