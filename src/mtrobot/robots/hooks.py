"""Running robot hooks: each robot on its own thread with a time limit, so that a hook that hangs or
loops never blocks the agent's event loop (its heartbeat, its other robots, its order path).

Python cannot kill a thread. A hook past its limit is abandoned: the robot is paused, its thread is told
to end after the hook ever returns, and whatever the hook returns then is thrown away. A resumed robot
gets a new instance on a new thread. A hook spinning on the CPU still holds the GIL for a share of the
time; the interpreter switches threads every few milliseconds, so the event loop keeps running.

The backtest uses :class:`InlineRunner`: hooks run in the loop's thread, with no time limit, so a run is
reproducible; a hook's exception pauses the robot there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class HookTimeout(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"did not return within {seconds:g} s")
        self.seconds = seconds


class HookRunner(Protocol):
    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()``'s result; its exception; or :class:`HookTimeout`."""
        ...

    def close(self) -> None: ...


class InlineRunner:
    async def run(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except SystemExit as exc:  # a robot calling sys.exit() stops itself, not the backtest
            raise RuntimeError(f"the hook raised {exc!r}") from None

    def close(self) -> None:
        return None


_Job = tuple[Callable[[], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class ThreadRunner:
    """One daemon thread per robot, running its hooks one after another."""

    def __init__(self, name: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=f"robot-{name}", daemon=True)
        self._thread.start()
        self.abandoned = False

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, future, loop = job
            try:
                result = fn()
            except BaseException as exc:  # the robot's failure is reported to the host, never raised here
                error = exc if isinstance(exc, Exception) else RuntimeError(f"the hook raised {exc!r}")
                _deliver(loop, future, None, error)
            else:
                _deliver(loop, future, result, None)

    async def run(self, fn: Callable[[], T]) -> T:
        if self.abandoned:
            raise HookTimeout(self.timeout_s)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, future, loop))
        try:
            return await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            self.abandoned = True
            self.close()
            raise HookTimeout(self.timeout_s) from None
        finally:  # timed out or cancelled: the late answer finds the future done and is thrown away
            future.cancel()

    def close(self) -> None:
        self._jobs.put(None)


def _deliver(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, exc: BaseException | None
) -> None:
    def settle() -> None:
        if future.done():  # abandoned (timed out or cancelled): the late answer is thrown away
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for this answer any more
        loop.call_soon_threadsafe(settle)
