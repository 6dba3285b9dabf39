"""The agent's lifeline: where the supervisor is not its parent (a container), its stdin's end stops it."""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios

from mtrobot.agent.service import watch_lifeline


def _unread(fd: int) -> int:
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


async def test_bytes_after_the_hand_off_are_ignored_and_the_end_of_stdin_stops_the_agent() -> None:
    read_end, write_end = os.pipe()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        watch_lifeline(loop, stopping, fd=read_end)
        os.write(write_end, b"more than the hand-off\n")
        deadline = loop.time() + 5
        while _unread(read_end):  # the watcher has read them
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
        assert not stopping.is_set()
        os.close(write_end)  # what the kernel does when the supervisor dies, however it dies
        write_end = -1
        await asyncio.wait_for(stopping.wait(), 5)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
