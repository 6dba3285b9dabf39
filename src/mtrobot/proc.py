"""Child-process helpers shared by everything that spawns a process."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from mtrobot.core.errors import FatalError

SECRET_ENV = frozenset({"MTROBOT_MASTER_KEY", "MT5_PASSWORD"})
"""Never inherited by a child unless the spawner adds it back on purpose."""


def inherited_env() -> dict[str, str]:
    """This process's environment without :data:`SECRET_ENV`: the base of every child's environment."""
    return {k: v for k, v in os.environ.items() if k not in SECRET_ENV}


def proc_status(pid: int | str) -> dict[str, str]:
    """``/proc/PID/status`` as field -> value (``{}`` once the process is gone, or without /proc)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except OSError:
        return {}


AGENT_LIFELINE_ENV = "MTROBOT_AGENT_LIFELINE"
"""Set to ``stdin`` by a runtime whose agents are not the supervisor's descendants (a container's parent is
podman's conmon): the supervisor keeps the agent's stdin open after the hand-off, the kernel closes it when
the supervisor dies however it dies, and the agent stops at that end of file."""


def die_with_parent() -> None:
    """``preexec_fn`` for children: on Linux the kernel sends SIGTERM when the parent dies, so even a
    SIGKILLed parent leaves no orphan behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


async def spawn_mtrobot(
    args: tuple[str, ...], *, env: Mapping[str, str], log_path: Path, stdin: bytes | None = None
) -> asyncio.subprocess.Process:
    """Start ``python -m mtrobot ARGS`` with output appended to ``log_path``. ``stdin`` (a secret, typically)
    is written to the child's standard input and closed; without it the child reads from /dev/null."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mtrobot", *args,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, env=dict(env), preexec_fn=die_with_parent,
        )  # fmt: skip
    if stdin is not None and process.stdin is not None:
        process.stdin.write(stdin)
        await process.stdin.drain()
        process.stdin.close()
    return process


async def stop_process(process: asyncio.subprocess.Process, grace: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after ``grace`` seconds; True if it had to be killed."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    try:
        await asyncio.wait_for(process.wait(), grace)
        return False
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return True


class ProcessLock:
    """A lock file held for a process's lifetime (holding the pid): one holder per path, a second is
    refused with ``busy`` at once rather than running beside the first."""

    def __init__(self, path: Path, busy: str) -> None:
        self.path = path
        self.busy = busy
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        f = open(self.path, "a+")  # noqa: SIM115 - held for the process's lifetime
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise FatalError(f"{self.busy} ({self.path})") from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
