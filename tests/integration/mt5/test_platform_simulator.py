"""``initialize()`` without credentials on a machine where the platform's simbroker runs: a script attaches
to it (found through DATA_DIR/run/simbroker.json), gets a demo account there, and the next run logs in to
the same account, as a terminal remembers its account."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from pathlib import Path

from mtrobot.sim.admin import SimAdmin
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.clock import VirtualClock
from mtrobot.sim.config import always_open, default_config
from mtrobot.sim.tcp import SimServer

MTROBOT = Path(sys.executable).with_name("mtrobot")
SCRIPT = """
import MetaTrader5 as mt5
assert mt5.initialize(), mt5.last_error()
account = mt5.account_info()
print(account.login, account.server, mt5.positions_total())
mt5.Buy("EURUSD", 0.01)
mt5.shutdown()
"""


async def run_script(script: Path, data_dir: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTROBOT_")} | {
        "MTROBOT_DATA_DIR": str(data_dir)
    }
    process = await asyncio.create_subprocess_exec(
        str(MTROBOT), "mt5", "run", str(script), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "MetaTrader5 is simbroker 127.0.0.1:" in err.decode()
    return out.decode().strip()


async def test_a_script_attaches_to_the_platforms_simbroker_and_keeps_its_demo_account(
    data_dir: Path,
) -> None:
    broker = SimBroker(
        always_open(default_config()), VirtualClock(dt.datetime(2026, 3, 4, 10, tzinfo=dt.UTC))
    )
    server = SimServer(broker, admin_token="admin-token-for-the-test")
    port = await server.start()
    try:
        run_dir = data_dir / "run"
        run_dir.mkdir()
        info = {"host": "127.0.0.1", "port": port, "servers": list(broker.servers),
                "admin_token": "admin-token-for-the-test", "pid": os.getpid()}  # fmt: skip
        (run_dir / "simbroker.json").write_text(json.dumps(info))
        script = data_dir / "script.py"
        script.write_text(SCRIPT)
        first = (await run_script(script, data_dir)).split()
        second = (await run_script(script, data_dir)).split()
        assert first[0] == second[0] and first[1] == second[1] == "MTRobot-Demo"
        assert (first[2], second[2]) == ("0", "1")  # the position of the first run is there in the second
        accounts = data_dir / "mt5" / "accounts.json"
        assert oct(accounts.stat().st_mode & 0o777) == "0o600"
        state = await SimAdmin("127.0.0.1", port, token="admin-token-for-the-test").account_state(
            login=int(first[0])
        )
        assert len(state["positions"]) == 2
    finally:
        await server.stop()
