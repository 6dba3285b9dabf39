"""The event loop of the processes that fan out and aggregate (the web worker, each agent, ``bench stream``):
uvloop where it is installed (Linux and macOS; not on Windows), else asyncio's own.

uvloop runs the same asyncio code with its scheduling, timers and socket writes in C: for the web worker's
fan-out (a thousand sockets woken and written per burst of snapshots) that is most of the time outside
our own code. ``MTROBOT_EVENT_LOOP=asyncio`` picks asyncio's loop anyway (to compare, or to rule uvloop out).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

EVENT_LOOP_ENV = "MTROBOT_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or ``None`` (asyncio's default) when it is not installed or not wanted."""
    if os.environ.get(EVENT_LOOP_ENV, "uvloop") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name() -> str:
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on :func:`loop_factory`'s loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
