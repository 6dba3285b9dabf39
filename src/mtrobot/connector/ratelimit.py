"""A login rate limiter shared by every agent on the host, one token bucket per broker server.

The bucket lives in a small JSON file under the shared run dir, guarded by ``flock``; any process that logs
in to the same server takes its token from the same file, so a thousand agents restarting after a
maintenance window cannot storm one trade server. A crashed holder releases the lock with its descriptor.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class LoginRate:
    """Set host-wide by ``MTROBOT_LOGIN_RATE_PER_S`` and ``MTROBOT_LOGIN_BURST`` (settings.py)."""

    per_second: float
    burst: float


class LoginRateLimiter:
    """``await acquire()`` returns once a login to ``server`` is allowed, host-wide."""

    def __init__(self, run_dir: Path, server: str, rate: LoginRate) -> None:
        self._dir = run_dir / "login-buckets"
        self._path = self._dir / f"{_SAFE.sub('_', server) or 'default'}.json"
        self.rate = rate

    def try_take(self, now: float | None = None) -> float:
        """Take a token if one is there (returns 0.0), else return the seconds until one will be."""
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 4096)
            now = time.time() if now is None else now
            try:
                state = json.loads(raw) if raw else {}
                tokens, stamp = float(state["tokens"]), float(state["stamp"])
            except (ValueError, KeyError, TypeError):
                tokens, stamp = self.rate.burst, now
            tokens = min(self.rate.burst, tokens + max(0.0, now - stamp) * self.rate.per_second)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate.per_second
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"tokens": tokens, "stamp": now}).encode())
            return wait
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    async def acquire(self, timeout: float = 300.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            wait = await asyncio.to_thread(self.try_take)
            if wait == 0.0:
                return
            if loop.time() + wait > deadline:
                raise TimeoutError(f"no login token for {self._path.stem} within {timeout:.0f} s")
            await asyncio.sleep(wait)
