"""What the agent's heartbeat measures of its own process: resident memory, CPU and the order rate."""

from __future__ import annotations

import os
import time
from collections import deque

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb(pid: int | None = None) -> float:
    """Resident set size in MiB, from ``/proc/PID/statm`` (0.0 where there is no /proc)."""
    try:
        fields = open(f"/proc/{pid or 'self'}/statm").read().split()  # noqa: SIM115 - one read
    except OSError:
        return 0.0
    return round(int(fields[1]) * _PAGE / 2**20, 1)


class CpuMeter:
    """CPU used by this process since the previous reading, in percent of one core."""

    def __init__(self) -> None:
        self._cpu = time.process_time()
        self._wall = time.monotonic()

    def percent(self) -> float:
        cpu, wall = time.process_time(), time.monotonic()
        used, elapsed = cpu - self._cpu, wall - self._wall
        self._cpu, self._wall = cpu, wall
        return round(100.0 * used / elapsed, 1) if elapsed > 0 else 0.0


class OrderRate:
    """Distinct orders seen in the last minute (each order_id counted once)."""

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._seen: deque[tuple[float, str]] = deque()
        self._ids: set[str] = set()

    def add(self, order_id: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._trim(now)
        if order_id not in self._ids:
            self._ids.add(order_id)
            self._seen.append((now, order_id))

    def per_minute(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        return len(self._seen) * 60.0 / self.window_s

    def _trim(self, now: float) -> None:
        while self._seen and self._seen[0][0] < now - self.window_s:
            self._ids.discard(self._seen.popleft()[1])
