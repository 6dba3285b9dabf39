"""One allocation of a portfolio inside the host: its robot instance, bars, state and orders in flight."""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import SymbolInfo, TradePosition
from mtrobot.core.ids import magic_number
from mtrobot.hub.schemas import Allocation
from mtrobot.robots.api import Bar, Position, Quote, Robot, Side
from mtrobot.robots.bars import BarBuilder
from mtrobot.robots.hooks import HookRunner

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
MAX_ORDERS_PER_EVENT = len(_BASE36)


class SlotState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    REFUSED = "refused"
    """The allocation cannot run (unknown robot, bad parameters, unknown symbol)."""
    STOPPED = "stopped"


def base36(value: int, width: int) -> str:
    digits = []
    while value:
        value, rest = divmod(value, 36)
        digits.append(_BASE36[rest])
    return "".join(reversed(digits)).rjust(width, "0")[-width:]


def slot_code(account: str, label: str) -> str:
    """Four characters that tell this allocation's order ids apart from the account's other ones."""
    digest = int.from_bytes(hashlib.blake2b(f"{account}/{label}".encode(), digest_size=4).digest(), "big")
    return base36(digest, 4)


def order_id(prefix: str, code: str, server_ms: int, index: int) -> str:
    """``r`` + code + market time + index: 14 characters, so the broker comment shows it verbatim.

    The id is derived from the moment the robot decided (the tick that triggered it), not from a counter:
    an agent restarted in the middle of a bar that re-decides the same thing at the same tick sends the
    same id, which the order path deduplicates instead of trading twice.
    """
    return f"{prefix}{code}{base36(server_ms, 8)}{_BASE36[index]}"


def decision_ms(oid: str) -> int | None:
    """The market time (ms) an :func:`order_id` was derived from, or ``None`` if ``oid`` is not one: how
    a reader of the bus (a parity check, the activity log) tells when a robot decided to send an order."""
    stamp = oid[5:13]
    if len(oid) != 14 or oid[0] not in "rf" or any(c not in _BASE36 for c in oid[1:]):
        return None
    return int(stamp, 36)


@dataclass(frozen=True, slots=True)
class InFlight:
    opening: bool
    position: int | None


class Slot:
    def __init__(self, account: str, allocation: Allocation, robot: type[Robot[Any]] | None) -> None:
        self.allocation = allocation
        self.label = allocation.label
        self.robot_class = robot
        self.robot: Robot[Any] | None = None
        self.params: Any = None
        self.state = SlotState.STARTING
        self.reason = ""
        self.magic = magic_number(account, self.label)
        self.code = slot_code(account, self.label)
        self.info: SymbolInfo | None = None
        self.builder: BarBuilder | None = None
        self.bars: deque[Bar] = deque(maxlen=robot.history if robot else 1)
        self.quote: Quote | None = None
        self.runner: HookRunner | None = None
        self.in_flight: dict[str, InFlight] = {}
        self.settled = asyncio.Event()
        self.settled.set()
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=10_000)
        self.tick_queued = False
        self.worker: asyncio.Task[None] | None = None
        self.orders_sent = 0
        self.last_bar: int | None = None
        self.retry_at = 0
        """Market time (ms) before which a slot still waiting for the terminal is not prepared again."""

    @property
    def key(self) -> tuple[str, str, str]:
        a = self.allocation
        return a.robot, a.symbol, a.timeframe

    @property
    def running(self) -> bool:
        return self.state is SlotState.RUNNING

    def own(self, positions: Sequence[TradePosition]) -> list[TradePosition]:
        return [p for p in positions if p.magic == self.magic and p.symbol == self.allocation.symbol]

    def views(self, positions: Sequence[TradePosition]) -> list[Position]:
        return [
            Position(
                ticket=p.ticket,
                side=Side.BUY if p.type == mt5.POSITION_TYPE_BUY else Side.SELL,
                volume=p.volume,
                price_open=p.price_open,
                sl=p.sl,
                tp=p.tp,
                profit=p.profit,
                time=p.time,
            )
            for p in self.own(positions)
        ]

    def track(self, oid: str, entry: InFlight) -> None:
        self.in_flight[oid] = entry
        self.settled.clear()

    def resolve(self, oid: str) -> bool:
        if self.in_flight.pop(oid, None) is None:
            return False
        if not self.in_flight:
            self.settled.set()
        return True

    def status(self) -> dict[str, Any]:
        """The entry for ``AccountSnapshot.robots``."""
        a = self.allocation
        return {
            "name": self.label,
            "robot": a.robot,
            "symbol": a.symbol,
            "timeframe": a.timeframe,
            "state": self.state.value,
            "reason": self.reason,
            "magic": self.magic,
            "orders_sent": self.orders_sent,
            "orders_in_flight": len(self.in_flight),
            "last_bar": self.last_bar,
        }
