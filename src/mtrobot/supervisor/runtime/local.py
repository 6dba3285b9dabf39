"""The plain runtime: the agent as a child process of the supervisor, with nothing but the OS's process
separation. The sandboxed runtimes (``sandbox*.py``) add limits and private views on top of the same idea."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Mapping
from typing import IO

from mtrobot.proc import die_with_parent

from .base import AgentLaunch, AgentProcess

PLAIN_ISOLATION: Mapping[str, str] = {
    "runtime": "local process",
    "memory": "not limited",
    "cpu": "not limited",
    "pids": "not limited",
    "files": "not limited",
    "mount": "shared with the host",
    "pid_view": "shared with the host",
}


class LocalProcess:
    """An :class:`~.base.AgentProcess` over an ``asyncio`` subprocess."""

    def __init__(self, process: asyncio.subprocess.Process, isolation: Mapping[str, str]) -> None:
        self._process = process
        self.pid = process.pid
        self.isolation = isolation

    async def wait(self) -> int:
        return await self._process.wait()

    def terminate(self) -> None:
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.terminate()

    def kill(self) -> None:
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()


async def spawn(
    launch: AgentLaunch, argv: tuple[str, ...], isolation: Mapping[str, str], preexec: object = None
) -> LocalProcess:
    """Start ``argv`` (the launch's command, possibly wrapped by a sandbox) with the hand-off on stdin."""
    launch.agent_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    out: int | IO[bytes] = subprocess.DEVNULL
    log_file = None
    if launch.log_path is not None:
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(launch.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        out = log_file
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(launch.env),
            preexec_fn=preexec if callable(preexec) else die_with_parent,
        )
    finally:
        if log_file is not None:
            log_file.close()
    assert process.stdin is not None
    try:
        process.stdin.write(launch.stdin)
        await process.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # it died at once: its exit code tells the supervisor
    finally:
        process.stdin.close()
    return LocalProcess(process, isolation)


class LocalRuntime:
    """Agents as plain child processes (the last resort; see :data:`PLAIN_ISOLATION`)."""

    name = "local"

    async def start(self, launch: AgentLaunch) -> AgentProcess:
        return await spawn(launch, launch.argv, PLAIN_ISOLATION)
