"""A login rate limiter shared by every agent on the host, one token bucket per broker server.

The bucket lives in a small JSON file under the shared run dir, guarded by ``flock``; any process that logs
in to the same server takes its token from the same file, so a thousand agents restarting after a
maintenance window cannot storm one trade server. A crashed holder releases the lock with its descriptor.

The bucket refills only while no login to the server is in flight: a token is taken when a login starts,
and the login is released (:meth:`~LoginRateLimiter.release`) once it is answered, so the next one waits a
full interval from that answer. The spacing then holds where the broker counts, whatever delayed a login on
its way (on a loaded host, processes that took their tokens 0.25 s apart reached the server in bunches: 7
logins in one second at 4/s). A login in flight keeps a lease file locked: killed mid-login, its process
lets go of it and the next poll ends the login; the lease's end (the session's login timeout plus 10 s)
bounds a holder that lives but never says it ended. The waiters stand in line in the same file and each
looks again about when its turn should come, so hundreds of them do not all poll it (with all polling, 300
agents came back in 65 s, not 40).
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
_HOLDER = re.compile(r"[0-9a-f]{12}")


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
        self._taken_at: float | None = None
        self._lease_fd: int | None = None
        """Held locked while this limiter's login is in flight: gone with its process, however it ends."""

    def try_take(self, now: float | None = None, lease_s: float | None = None) -> float:
        """Take a token if one is there and it is this limiter's turn (returns 0.0), else return the seconds
        until it may be (about its turn: the waiters queue, so 300 of them do not all poll the file).
        ``lease_s``: how long the login may take at most (default ``self.lease_s``)."""
        with self._bucket(now) as (state, now):
            ahead = state.place(self._me, now)
            if ahead < int(state.tokens):
                state.tokens -= 1.0
                del state.queue[self._me]
                self._hold_lease()
                state.flying[self._me] = now + (lease_s or self.lease_s)
                self._taken_at = now
                return 0.0
            per_second = self.rate.per_second
            if ahead == 0:  # next: soon after a token is there, or the login in flight is answered
                wait = min(1.0 / per_second, 0.05) if state.flying else (1.0 - state.tokens) / per_second
            else:
                turns = ahead - int(state.tokens)  # logins before its own, each a token and a round trip
                first = max(1.0 - state.tokens % 1.0, 0.0) / per_second
                wait = min(0.8 * (first + turns * (1.0 / per_second + state.flight_s)), 5.0)
            wait = max(wait, 0.005)
            state.queue[self._me] = now + 2.0 * wait + 2.0  # missed by then: gone (killed, gave up)
            return wait

    def release(self, now: float | None = None) -> None:
        """The login this limiter started is answered (or failed): the refill goes on from now."""
        with self._bucket(now) as (state, now):
            if state.flying.pop(self._me, None) is not None and self._taken_at is not None:
                flight = min(max(now - self._taken_at, 0.0), 10.0)
                state.flight_s = 0.8 * state.flight_s + 0.2 * flight
            self._taken_at = None
            self._drop_lease()

    def _lease_path(self, holder: str) -> Path:
        return self._dir / f"{self._path.stem}.{holder}.lease"

    def _hold_lease(self) -> None:
        self._drop_lease()
        fd = os.open(self._lease_path(self._me), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a name of our own: nobody else holds it
        self._lease_fd = fd

    def _drop_lease(self) -> None:
        if self._lease_fd is not None:
            with contextlib.suppress(OSError):
                self._lease_path(self._me).unlink()
            os.close(self._lease_fd)
            self._lease_fd = None

    def _alive(self, holder: str) -> bool:
        """Whether ``holder``'s login is still in flight: its lease file is still locked by its process (a
        process killed mid-login lets go of it with its descriptors, in any PID namespace)."""
        if holder == self._me:
            return self._lease_fd is not None
        if not _HOLDER.fullmatch(holder):
            return False  # nobody's: written into the shared file by hand
        try:
            fd = os.open(self._lease_path(holder), os.O_RDWR)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        with contextlib.suppress(OSError):
            self._lease_path(holder).unlink()
        return False

    @contextlib.contextmanager
    def _bucket(self, now: float | None) -> Iterator[tuple[_State, float]]:
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 1 << 20)
            now = time.time() if now is None else now
            state = _State.read(raw, self.rate.burst, now)
            state.advance(now, self.rate, self._alive)
            yield state, now
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, state.dump())
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    async def acquire(self, timeout: float = 300.0, lease_s: float | None = None) -> None:
        """Wait for this limiter's turn, at most ``timeout``; the login then holds the bucket until
        :meth:`release`, ``lease_s`` at most."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            wait = await asyncio.to_thread(self.try_take, None, lease_s)
            if wait == 0.0:
                return
            if loop.time() + wait > deadline:
                raise TimeoutError(f"no login token for {self._path.stem} within {timeout:.0f} s")
            await asyncio.sleep(wait)


MAX_WAITERS = 10_000
"""Waiters one server's file keeps (a thousand agents of one server fit many times over)."""


@dataclass(slots=True)
class _State:
    """The shared file's content: tokens as of ``stamp``, the logins in flight (holder -> lease end), the
    waiters in their order (holder -> when it must have polled again) and a login's recent round trip."""

    tokens: float
    stamp: float
    flying: dict[str, float]
    queue: dict[str, float]
    flight_s: float = 0.0

    @classmethod
    def read(cls, raw: bytes, burst: float, now: float) -> _State:
        fresh = cls(burst, now, {}, {})
        try:
            state = json.loads(raw) if raw else {}
            flying = {str(k): float(v) for k, v in dict(state.get("flying", {})).items()}
            queue = {str(k): float(v) for k, v in dict(state.get("queue", {})).items()}
            tokens, stamp = float(state["tokens"]), float(state["stamp"])
            flight_s = float(state.get("flight_s", 0.0))
        except (ValueError, KeyError, TypeError, AttributeError):
            return fresh
        # Every agent can write this file: a value that is no time or count starts it again (a NaN would
        # otherwise hold every login to the server for ever).
        numbers = (tokens, stamp, flight_s, *flying.values(), *queue.values())
        if not all(math.isfinite(v) for v in numbers) or len(flying) + len(queue) > MAX_WAITERS:
            return fresh
        cap = now + 3600.0
        return cls(
            min(max(tokens, 0.0), burst),
            min(stamp, now),
            {k: min(v, cap) for k, v in flying.items()},
            {k: min(v, cap) for k, v in queue.items()},
            min(max(flight_s, 0.0), 10.0),
        )

    def place(self, holder: str, now: float) -> int:
        """How many waiters are before ``holder`` (queued at the end if it is new); stale ones leave."""
        for waiter, due in list(self.queue.items()):
            if due < now and waiter != holder:
                del self.queue[waiter]
        self.queue.setdefault(holder, now)
        return list(self.queue).index(holder)

    def advance(self, now: float, rate: LoginRate, alive: Callable[[str], bool]) -> None:
        """Refill for the time no login was in flight. A login ends with its lease (then, at the lease's end)
        or with its holder's process (when that is noticed: ``alive`` says no)."""
        for holder, end in list(self.flying.items()):
            if not alive(holder):  # asked first: it also removes a dead holder's lease file
                del self.flying[holder]
            elif end <= now:
                del self.flying[holder]
                self.stamp = max(self.stamp, end)
        if self.flying:
            self.stamp = max(self.stamp, now)  # nothing accrues while a login is on its way
            return
        self.tokens = min(rate.burst, self.tokens + max(0.0, now - self.stamp) * rate.per_second)
        self.stamp = max(self.stamp, now)

    def dump(self) -> bytes:
        fields = {"tokens": self.tokens, "stamp": self.stamp, "flying": self.flying, "queue": self.queue}
        return json.dumps({**fields, "flight_s": self.flight_s}).encode()
