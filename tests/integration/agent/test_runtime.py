"""The plain local runtime starts a real process with the hand-off on stdin only, and stops it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mtrobot.supervisor.runtime import AgentLaunch, AgentProcess, LocalRuntime

ECHO = (
    "import sys, os; data = sys.stdin.buffer.read(); sys.stdout.write(data.decode() + '|' + os.environ['X'])"
)


def _launch(tmp_path: Path, code: str, stdin: bytes = b"secret-handoff\n") -> AgentLaunch:
    return AgentLaunch(
        account="acct-1",
        argv=(sys.executable, "-c", code),
        env={"X": "plain", "PATH": os.environ.get("PATH", "")},
        stdin=stdin,
        agent_dir=tmp_path / "agent",
        log_path=tmp_path / "agent.log",
    )


async def test_the_hand_off_reaches_stdin_and_the_exit_code_comes_back(tmp_path: Path) -> None:
    process = await LocalRuntime().start(_launch(tmp_path, ECHO))
    assert isinstance(process, AgentProcess)
    assert await process.wait() == 0
    assert (tmp_path / "agent.log").read_text() == "secret-handoff\n|plain"
    assert (tmp_path / "agent").is_dir()
    assert process.isolation["runtime"] == "local process"
    assert "secret" not in repr(_launch(tmp_path, ECHO))


async def test_terminate_and_kill_end_the_process(tmp_path: Path) -> None:
    code = "import sys, time; sys.stdin.read(); time.sleep(60)"
    process = await LocalRuntime().start(_launch(tmp_path, code))
    process.terminate()
    assert await process.wait() == -15
    process = await LocalRuntime().start(
        _launch(
            tmp_path,
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
        )
    )
    process.kill()
    assert await process.wait() == -9
