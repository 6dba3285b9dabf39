"""When a trade server's market is open: weekly close, daily break (maintenance window), forced windows.

All times are the server's wall clock in epoch milliseconds (``utcfromtimestamp`` of them gives the server
time of day, as MT5 does).
"""

from __future__ import annotations

from mtrobot.sim.config import ServerConfig

DAY_MS = 86_400_000
MINUTE_MS = 60_000
_THURSDAY_EPOCH = 4  # 1970-01-01 was a Thursday; MT5 counts Sunday = 0


def weekday(server_ms: int) -> int:
    """0 = Sunday ... 6 = Saturday, of the server wall clock."""
    return (server_ms // DAY_MS + _THURSDAY_EPOCH) % 7


def minute_of_day(server_ms: int) -> int:
    return (server_ms % DAY_MS) // MINUTE_MS


def _hhmm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def day_start(server_ms: int) -> int:
    return server_ms - server_ms % DAY_MS


class Schedule:
    def __init__(self, config: ServerConfig) -> None:
        self._break_start = _hhmm(config.maintenance_start)
        self._break_minutes = config.maintenance_minutes
        self._friday_close = _hhmm(config.weekend_close)
        self._monday_open = _hhmm(config.weekend_open)
        self.forced_until_ms = 0
        """Server time until which an injected maintenance window keeps the market closed."""

    def in_weekend(self, server_ms: int) -> bool:
        day, minute = weekday(server_ms), minute_of_day(server_ms)
        return (
            day in (0, 6)
            or (day == 5 and minute >= self._friday_close)
            or (day == 1 and minute < self._monday_open)
        )

    def in_daily_break(self, server_ms: int) -> bool:
        minute = minute_of_day(server_ms)
        end = self._break_start + self._break_minutes
        if end <= 24 * 60:
            return self._break_start <= minute < end
        return minute >= self._break_start or minute < end - 24 * 60

    def in_maintenance(self, server_ms: int) -> bool:
        return server_ms < self.forced_until_ms or self.in_daily_break(server_ms)

    def is_open(self, server_ms: int, *, weekends: bool = False) -> bool:
        """Trading allowed now; ``weekends`` for symbols that trade seven days (crypto CFDs)."""
        if self.in_maintenance(server_ms):
            return False
        return weekends or not self.in_weekend(server_ms)

    def trading_day_end(self, server_ms: int) -> int:
        """Last millisecond of the server day containing ``server_ms`` (ORDER_TIME_DAY expiry)."""
        return day_start(server_ms) + DAY_MS - 1
