"""A container's agent as an :class:`~.base.AgentProcess`: waited for by its host PID (it is not our child),
its groups read and removed like any sandboxed agent's."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Mapping

from .base import AgentProcess
from .limits import LimitPlan, Usage
from .podman_groups import AgentParent
from .sandbox import LimitedProcess


class PodmanProcess(LimitedProcess):
    """An agent in its container: signalled at its own host PID, its groups read where podman put them
    (memory in :class:`AgentParent`); once it has exited, its container and groups are removed."""

    def __init__(self, inner: AgentProcess, plan: LimitPlan, pid: int, name: str, parent: AgentParent | None,
                 remove: Callable[[str], Awaitable[None]]) -> None:  # fmt: skip
        super().__init__(inner, plan, pid)
        self._parent = parent
        self._remove = remove
        self.name = name

    async def _wait_and_clean(self) -> int:
        code = await self._inner.wait()
        self._final = self.usage()
        await self._remove(self.name)
        if self._parent is not None:
            await asyncio.to_thread(self._parent.remove)
            self._final.oom_kills = max(self._final.oom_kills, self._parent.oom_kills())
        return code

    def usage(self) -> Usage:
        if self._final is not None:
            return self._final
        usage = self._plan.cgroups.usage()
        if self._parent is not None:
            usage.oom_kills = max(usage.oom_kills, self._parent.oom_kills())
        return usage


def close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


class ContainerProcess:
    """A started container's agent, by its host PID: waited for with a pidfd (it is not our child), its
    exit code read from podman, signalled directly; its lifeline held open while it runs."""

    def __init__(
        self, pid: int, isolation: Mapping[str, str], exit_code: Callable[[], Awaitable[int]], lifeline: int
    ) -> None:
        self.pid = pid
        self.isolation = isolation
        self._exit_code = exit_code
        self._lifeline = lifeline
        self._code: int | None = None
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:
            self._pidfd = None  # already gone

    async def wait(self) -> int:
        if self._code is None:
            if self._pidfd is not None:
                await _readable(self._pidfd)
                close_quietly(self._pidfd)
                self._pidfd = None
            close_quietly(self._lifeline)
            self._code = await self._exit_code()
        return self._code

    def terminate(self) -> None:
        self._send(signal.SIGTERM)

    def kill(self) -> None:
        self._send(signal.SIGKILL)

    def _send(self, sig: signal.Signals) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(self._pidfd, sig)  # never a later process that got the same PID


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, lambda: None if ready.done() else ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(fd)
