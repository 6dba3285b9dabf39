"""The stream's send watchdog: one task instead of a timer per message; a socket whose send waits too long
is told, one that is not sending or sent in time is not."""

from __future__ import annotations

import asyncio

from mtrobot.web.stream import SendWatchdog


class Socket:
    def __init__(self, began: float | None) -> None:
        self.send_began = began
        self.expired = 0

    def send_expired(self) -> None:
        self.expired += 1


def test_only_a_send_older_than_the_limit_expires_and_only_once() -> None:
    async def run() -> None:
        watchdog = SendWatchdog(limit_s=20.0)
        idle, recent, stuck = Socket(None), Socket(95.0), Socket(79.0)
        for socket in (idle, recent, stuck):
            watchdog.add(socket)
        watchdog.check(100.0)
        watchdog.check(101.0)
        assert (idle.expired, recent.expired, stuck.expired) == (0, 0, 1)
        watchdog.check(116.0)
        assert recent.expired == 1
        for socket in (idle, recent, stuck):
            watchdog.discard(socket)

    asyncio.run(run())


def test_the_watchdog_task_finds_a_stuck_send_by_itself_and_ends_with_its_last_socket() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        watchdog = SendWatchdog(limit_s=0.05, period_s=0.01)
        stuck = Socket(loop.time())
        watchdog.add(stuck)
        async with asyncio.timeout(5):
            while not stuck.expired:
                await asyncio.sleep(0.01)
        task = watchdog._task
        assert task is not None
        await asyncio.wait_for(task, 5)  # no socket left to watch: the task ended

    asyncio.run(run())
