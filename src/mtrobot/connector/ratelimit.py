"""A login rate limiter shared by every agent on the host, one token bucket per broker server.

The bucket lives in a small JSON file under the shared run dir, guarded by ``flock``; any process that logs
in to the same server takes its token from the same file, so a thousand agents restarting after a
maintenance window cannot storm one trade server. A crashed holder releases the lock with its descriptor.

The bucket refills only while no login to the server is in flight: a token is taken when a login starts,
and the login is released (:meth:`~LoginRateLimiter.release`) once it is answered, so the next one waits a
full interval from that answer. The spacing then holds where the broker counts, whatever delayed a login on
its way (on a loaded host, processes that took their tokens 0.25 s apart reached the server in bunches: 7
logins in one second at 4/s). A login that never says it ended (its process killed) holds the bucket
``lease_s`` at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import math
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class LoginRate:
    """Set host-wide by ``MTROBOT_LOGIN_RATE_PER_S`` and ``MTROBOT_LOGIN_BURST`` (settings.py)."""

    per_second: float
    burst: float


class LoginRateLimiter:
    """``await acquire()`` returns once a login to ``server`` may start, host-wide; ``release()`` when it
    ended."""

    def __init__(self, run_dir: Path, server: str, rate: LoginRate, lease_s: float = 75.0) -> None:
        self._dir = run_dir / "login-buckets"
        self._path = self._dir / f"{_SAFE.sub('_', server) or 'default'}.json"
        self.rate = rate
        self.lease_s = lease_s
        self._me = uuid.uuid4().hex[:12]
        """This limiter's logins in the shared file (one at a time: a session logs in once at a time)."""

    def try_take(self, now: float | None = None) -> float:
        """Take a token if one is there (returns 0.0), else return the seconds until one may be."""
        with self._bucket(now) as (state, now):
            if state.tokens >= 1.0:
                state.tokens -= 1.0
                state.flying[self._me] = now + self.lease_s
                return 0.0
            return (1.0 - state.tokens) / self.rate.per_second

    def release(self, now: float | None = None) -> None:
        """The login this limiter started is answered (or failed): the refill goes on from now."""
        with self._bucket(now) as (state, _):
            state.flying.pop(self._me, None)

    @contextlib.contextmanager
    def _bucket(self, now: float | None) -> Iterator[tuple[_State, float]]:
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 65536)
            now = time.time() if now is None else now
            state = _State.read(raw, self.rate.burst, now)
            state.advance(now, self.rate)
            yield state, now
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, state.dump(now))
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


@dataclass(slots=True)
class _State:
    """The shared file's content: tokens as of ``stamp``, and the logins in flight (holder -> lease end)."""

    tokens: float
    stamp: float
    flying: dict[str, float]

    @classmethod
    def read(cls, raw: bytes, burst: float, now: float) -> _State:
        try:
            state = json.loads(raw) if raw else {}
            flying = {str(k): float(v) for k, v in dict(state.get("flying", {})).items()}
            tokens, stamp = float(state["tokens"]), float(state["stamp"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls(burst, now, {})
        # Every agent can write this file: a value that is no time or count starts it again (a NaN would
        # otherwise hold every login to the server for ever).
        if not all(math.isfinite(v) for v in (tokens, stamp, *flying.values())) or len(flying) > 10_000:
            return cls(burst, now, {})
        return cls(min(tokens, burst), min(stamp, now), {k: min(v, now + 3600.0) for k, v in flying.items()})

    def advance(self, now: float, rate: LoginRate) -> None:
        """Refill for the time no login was in flight; a lease past its end counts as ended then."""
        for holder, end in sorted(self.flying.items(), key=lambda item: item[1]):
            if end > now:
                break
            del self.flying[holder]
            self.stamp = max(self.stamp, end)
        if self.flying:
            self.stamp = max(self.stamp, now)  # nothing accrues while a login is on its way
            return
        self.tokens = min(rate.burst, self.tokens + max(0.0, now - self.stamp) * rate.per_second)
        self.stamp = max(self.stamp, now)

    def dump(self, now: float) -> bytes:
        return json.dumps({"tokens": self.tokens, "stamp": self.stamp, "flying": self.flying}).encode()
