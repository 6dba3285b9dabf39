"""The agent's lean entry (``python -m mtrobot.agent``, what the supervisor starts): it loads neither numpy
nor the command line's typer, and a SIGTERM stops it at any moment of its start, also as PID 1 of its
sandbox, where the kernel drops every signal PID 1 has no handler for."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mtrobot.settings import Settings
from mtrobot.supervisor.runtime import AgentLaunch
from mtrobot.supervisor.runtime.sandbox import BubblewrapRuntime, bwrap_binary, bwrap_works, catches
from mtrobot.supervisor.service import Supervisor, SupervisorOptions
from tests.integration.agent.agents import Platform, running, until

BWRAP = bwrap_binary()
needs_bwrap = pytest.mark.skipif(
    BWRAP is None or bwrap_works(BWRAP) is not None, reason="bubblewrap cannot run on this host"
)
HEAVY = ("numpy", "typer", "click")


def test_the_supervisors_entry_imports_the_whole_agent_but_not_numpy_or_typer(tmp_path: Path) -> None:
    # Without a hand-off the entry stops at reading it, after importing everything the agent runs on.
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mtrobot.agent", "--account", "acct-1"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "MTROBOT_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    lines = done.stderr.splitlines()
    imported = {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}
    assert done.returncode == 1 and "no agent hand-off on stdin" in done.stderr, done.stderr[-2000:]
    assert {"mtrobot.agent.service", "mtrobot.connector.service", "nats.aio.client"} <= imported
    assert {name.split(".")[0] for name in imported} & set(HEAVY) == set()


def test_a_sigterm_while_the_agent_starts_ends_it_at_once_as_stopped(tmp_path: Path) -> None:
    # stdin stays open and empty: the agent waits for its hand-off, as one just started by the supervisor.
    log = tmp_path / "agent.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mtrobot.agent", "--account", "acct-1"], stdin=subprocess.PIPE,
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "MTROBOT_DATA_DIR": str(tmp_path)},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not catches(proc.pid, signal.SIGTERM):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, log.read_text()  # EXIT_STOPPED: the supervisor does not restart it
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdin is not None
        proc.stdin.close()


SLOW_PID_1 = textwrap.dedent(
    """
    import os, signal, sys, time
    assert os.getpid() == 1
    time.sleep(1.0)  # a slow start: a SIGTERM until now found no handler, and the kernel dropped it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    time.sleep(60)
    sys.exit(3)
    """
)


@needs_bwrap
async def test_a_sigterm_lost_by_a_sandboxed_pid_1_is_sent_again_once_it_has_a_handler(
    data_dir: Path,
) -> None:
    assert BWRAP is not None
    launch = AgentLaunch(
        account="slow", argv=(sys.executable, "-c", SLOW_PID_1), env={"PATH": os.environ["PATH"]},
        stdin=b"", agent_dir=data_dir / "connector" / "slow", log_path=data_dir / "logs" / "slow.log",
    )  # fmt: skip
    process = await BubblewrapRuntime(Settings(data_dir=data_dir), BWRAP).start(launch)
    try:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 20) == 0, (data_dir / "logs" / "slow.log").read_text()
    finally:
        process.kill()
        await process.wait()


@needs_bwrap
async def test_an_agent_stopped_right_after_its_start_in_its_sandbox_stops_within_seconds(
    platform: Platform,
) -> None:
    assert BWRAP is not None
    runtime = BubblewrapRuntime(platform.settings, BWRAP)
    supervisor = Supervisor(
        platform.settings, runtime, SupervisorOptions(poll_s=0.05), nats_url=platform.settings.nats_url
    )
    async with running(supervisor):
        account, _login = await platform.connect_account()

        def started() -> bool:
            slot = supervisor.slots.get(account)
            return slot is not None and slot.process is not None

        await until(started, 60, "the agent's process")
        process = supervisor.slots[account].process
        assert process is not None
        began = time.monotonic()
        process.terminate()
        code = await asyncio.wait_for(process.wait(), 30)
        took = time.monotonic() - began
        # The supervisor kills an agent that ignores SIGTERM after its grace (18 s): well before that.
        assert code == 0 and took < 8.0, (code, took)
