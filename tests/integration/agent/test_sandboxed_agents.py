"""Real ``mtrobot agent`` processes in the runtime this host chooses (bubblewrap here): an account's agent
trades from inside its sandbox, and account A's credentials and the master key are out of agent B's reach.

B's view is checked from outside, as root: its mount namespace (``/proc/PID/root``) has neither the
database, the master key file nor A's directory, and B's environment, argv and memory do not hold A's
password or the master key. A itself holds its password (the control: the scan finds what is there).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest
from nats.aio.client import Client

from mtrobot.supervisor.runtime.sandbox import BubblewrapRuntime, bwrap_binary, bwrap_works
from mtrobot.supervisor.service import Supervisor, SupervisorOptions
from tests.integration.agent.agents import Platform, Trader, running, until
from tests.integration.agent.sandbox_helpers import connect_with_password
from tests.secret_scan import memory_holds, where_held

BWRAP = bwrap_binary()
pytestmark = pytest.mark.skipif(
    BWRAP is None or bwrap_works(BWRAP) is not None, reason="bubblewrap cannot run on this host"
)


def sandboxed(platform: Platform) -> contextlib.AbstractAsyncContextManager[Supervisor]:
    assert BWRAP is not None
    runtime = BubblewrapRuntime(platform.settings, BWRAP)
    options = SupervisorOptions(poll_s=0.2)
    return running(Supervisor(platform.settings, runtime, options, nats_url=platform.settings.nats_url))


def agent_pid(supervisor: Supervisor, account: str) -> int:
    slot = supervisor.slots[account]
    assert slot.process is not None
    return slot.process.pid


async def test_an_agent_in_its_sandbox_trades_and_b_cannot_reach_a(platform: Platform, nc: Client) -> None:
    async with sandboxed(platform) as supervisor:
        a, a_password = await connect_with_password(platform)
        b, _ = await connect_with_password(platform)
        ta, tb = await Trader(nc, a).listen(), await Trader(nc, b).listen()
        await asyncio.gather(ta.wait_running(timeout=30), tb.wait_running(timeout=30))
        order_id = await ta.buy()
        await until(lambda: bool(ta.filled(order_id)), 15, "A's fill from inside its sandbox")

        isolation = supervisor.slots[b].process.isolation  # type: ignore[union-attr]
        assert isolation["runtime"] == "bubblewrap" and isolation["mount"].startswith("private")
        a_pid, b_pid = agent_pid(supervisor, a), agent_pid(supervisor, b)
        data = platform.settings.data_dir
        b_root = Path(f"/proc/{b_pid}/root")
        assert (b_root / str(data / "connector" / b).lstrip("/")).is_dir(), "B sees its own directory"
        for hidden in (data / "connector" / a, data / "mtrobot.db", data / "master.key", data / "logs"):
            assert not (b_root / str(hidden).lstrip("/")).exists(), f"agent B can see {hidden}"

        keys = platform.vault.keyring.keys
        master = [k.material for k in keys] + [k.encoded().encode() for k in keys]
        needles = [a_password.encode()]
        assert memory_holds(a_pid, needles), "the scan must find A's password where it is (in A)"
        assert where_held(b_pid, needles) == [], "A's password is in agent B"
        for pid in (a_pid, b_pid):
            assert where_held(pid, master) == [], "the master key is in an agent"
        for pid in (a_pid, b_pid):  # A's market order and fill, B idle: the order path needs no arrays
            assert "numpy" not in Path(f"/proc/{pid}/maps").read_text(), "an idle agent loaded numpy"
        environ = Path(f"/proc/{b_pid}/environ").read_bytes().split(b"\0")
        assert not any(e.startswith(b"MTROBOT_MASTER_KEY") for e in environ)
        assert os.getpid() != b_pid
