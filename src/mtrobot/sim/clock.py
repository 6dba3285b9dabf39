"""Clocks for the simulator, and the trade server's wall clock.

MT5 stamps everything with the *trade server's* wall clock (MT5_REFERENCE.md 6.13): most FX brokers run
GMT+2 in winter and GMT+3 during US summer time, so that 00:00 server time is 17:00 in New York. The
simulator keeps true UTC in its :class:`Clock` and converts with a :class:`ServerZone`.

``RealClock`` follows the system clock (the default). ``VirtualClock`` starts at a chosen instant and
moves only when told to (``advance``) or at a chosen speed, so a run is reproducible and can go faster
than real time.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from mtrobot.core.errors import ConfigError

_NEW_YORK = ZoneInfo("America/New_York")
HOUR_MS = 3_600_000


class Clock(Protocol):
    def now_ms(self) -> int:
        """True UTC, epoch milliseconds."""
        ...


class RealClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class VirtualClock:
    """Reproducible time: starts at ``start`` and moves with :meth:`advance` (and ``speed`` × real time if
    ``speed`` is given, e.g. 60 for a minute per second)."""

    def __init__(self, start: datetime | int, speed: float | None = None) -> None:
        self._base_ms = start if isinstance(start, int) else int(start.timestamp() * 1000)
        self._speed = speed
        self._real0 = time.monotonic()

    def now_ms(self) -> int:
        if self._speed is None:
            return self._base_ms
        return self._base_ms + int((time.monotonic() - self._real0) * 1000 * self._speed)

    def advance(self, seconds: float) -> int:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._base_ms += round(seconds * 1000)
        return self.now_ms()

    def set_ms(self, utc_ms: int) -> None:
        """Jump to an instant (not before the current one)."""
        self.advance(max(0, utc_ms - self.now_ms()) / 1000)


_FIXED = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$")


class ServerZone:
    """The server's offset from UTC: ``"fx"`` (New York + 7 h, i.e. GMT+2/+3 following US DST), or a
    fixed offset such as ``"+02:00"``, ``"UTC+3"``, ``"UTC"``."""

    def __init__(self, spec: str = "fx") -> None:
        self.spec = spec
        self._fixed_ms: int | None = None
        self._hour: tuple[int, int] | None = None
        """The last UTC hour asked and its offset: New York changes its clock only on a whole UTC hour
        (02:00 local), and the server clock is read several times per call."""
        if spec == "fx":
            return
        if spec in ("UTC", "GMT", "+00:00"):
            self._fixed_ms = 0
            return
        match = _FIXED.match(spec)
        if not match:
            raise ConfigError(f"timezone: {spec!r} is not 'fx' or an offset like '+02:00'")
        sign = -1 if match.group(1) == "-" else 1
        self._fixed_ms = sign * (int(match.group(2)) * 3600 + int(match.group(3) or 0) * 60) * 1000

    def offset_ms(self, utc_ms: int) -> int:
        if self._fixed_ms is not None:
            return self._fixed_ms
        hour = utc_ms // HOUR_MS
        if self._hour is not None and self._hour[0] == hour:
            return self._hour[1]
        instant = datetime.fromtimestamp(hour * HOUR_MS / 1000, UTC)
        ny = instant.astimezone(_NEW_YORK).utcoffset() or timedelta(0)
        offset = int((ny + timedelta(hours=7)).total_seconds() * 1000)
        self._hour = (hour, offset)
        return offset

    def to_server_ms(self, utc_ms: int) -> int:
        return utc_ms + self.offset_ms(utc_ms)
