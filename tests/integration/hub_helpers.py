"""Helpers for the hub's integration tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable


def unique_service(prefix: str = "connector") -> str:
    """A fresh service name, so tests sharing the session's bus never see each other's documents."""
    return f"{prefix}.t{uuid.uuid4().hex[:10]}"


async def eventually(predicate: Callable[[], Awaitable[bool] | bool], timeout: float, what: str) -> None:
    """Wait until ``predicate`` holds, polling; fail naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
