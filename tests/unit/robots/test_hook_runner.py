"""An abandoned hook's late failure is thrown away, not left in a Future nobody reads (asyncio would log
"Future exception was never retrieved" for each one when it is collected)."""

from __future__ import annotations

import asyncio
import functools
import gc
import threading

import pytest

from mtrobot.robots.hooks import HookTimeout, ThreadRunner


def _late_failure(release: threading.Event, finished: threading.Event) -> None:
    release.wait(30)
    finished.set()
    raise RuntimeError("the robot failed after its caller gave up")


async def test_a_hook_abandoned_by_timeout_or_cancellation_leaves_no_unretrieved_future() -> None:
    loop = asyncio.get_running_loop()
    seen: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(str(context.get("message"))))
    try:
        for abandon in ("timeout", "cancel"):
            release, finished = threading.Event(), threading.Event()
            runner = ThreadRunner("test", timeout_s=0.05 if abandon == "timeout" else 30)
            call = asyncio.ensure_future(runner.run(functools.partial(_late_failure, release, finished)))
            if abandon == "timeout":
                with pytest.raises(HookTimeout):
                    await call
            else:
                await asyncio.sleep(0)  # the job is queued on the robot's thread
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
            release.set()
            runner.close()
            await asyncio.to_thread(runner._thread.join, 30)
            assert finished.is_set()
            await asyncio.sleep(0)  # the loop runs the hand-over of the late answer
            del call
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert [m for m in seen if "never retrieved" in m] == []
