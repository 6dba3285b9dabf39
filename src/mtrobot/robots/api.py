"""What a robot author writes against: a :class:`Robot` subclass with declared :class:`Params` and hooks.

A robot never holds the terminal. Each hook gets a :class:`Context`: copies of the market (closed bars,
the last quote, the robot's own positions, the account's figures) and an order API that only *records*
what the robot wants (:class:`Intent`). After the hook returns, the robot host sizes each intent from the
allocation's risk settings, runs the pre-trade risk checks and publishes an OrderRequest on the account's
subject. The same robot therefore runs unchanged in a backtest, on the simulator and live.

Hooks are plain (synchronous) methods, called one at a time per robot, each with a time limit: a hook that
raises or runs past it pauses this robot only. Signals belong in :meth:`Robot.on_bar`, called once per
closed bar; a market order asked for there is executed at the next bar's open (the tick that closed the
bar).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from mtrobot.core.events import Fill, OrderUpdate


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


@dataclass(frozen=True, slots=True)
class Bar:
    """A closed bar of bid prices. ``time`` is its open time in the trade server's clock (epoch seconds)."""

    time: int
    open: float
    high: float
    low: float
    close: float
    tick_volume: int
    spread: int
    """Spread of the bar's last tick, in points."""


@dataclass(frozen=True, slots=True)
class Quote:
    time_msc: int
    """Trade server clock, epoch milliseconds."""
    bid: float
    ask: float


@dataclass(frozen=True, slots=True)
class Position:
    """One of this robot's open positions (same symbol, the allocation's magic number)."""

    ticket: int
    side: Side
    volume: float
    price_open: float
    sl: float
    tp: float
    profit: float
    time: int


@dataclass(frozen=True, slots=True)
class AccountView:
    currency: str
    balance: float
    equity: float
    margin_free: float


IntentAction = Literal["open", "close", "modify"]


@dataclass(frozen=True, slots=True)
class Intent:
    """One thing a robot asked for in a hook; the host turns it into an OrderRequest (or refuses it)."""

    action: IntentAction
    side: Side | None = None
    position: int | None = None
    volume: float | None = None
    """Only for a partial close; opening volumes come from the allocation's sizing."""
    sl: float | None = None
    tp: float | None = None


class RobotError(Exception):
    """Raise it from a hook to stop the robot with your own plain-language reason (shown to the trader
    as is), e.g. ``raise RobotError("needs a hedging account")``. Any other exception pauses the robot
    too, reported with its type and message."""


class Params(BaseModel):
    """Base of every robot's parameters: declare fields with types, ranges (``ge``/``le``) and defaults,
    and a ``description``. Values of the wrong type are refused, never coerced (``"10"`` is not 10)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


P = TypeVar("P", bound=Params)


class Context:
    """What one hook call sees and may do. Everything here is a copy taken before the call."""

    def __init__(
        self,
        *,
        symbol: str,
        timeframe: str,
        digits: int,
        point: float,
        now_ms: int,
        bars: Sequence[Bar],
        quote: Quote | None,
        positions: Sequence[Position],
        account: AccountView | None,
        hedging: bool,
    ) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.digits = digits
        self.point = point
        self.now_ms = now_ms
        """The trade server's clock at the event, epoch milliseconds."""
        self.bars: tuple[Bar, ...] = tuple(bars)
        """Closed bars, oldest first, at most the robot's ``history``."""
        self.quote = quote
        self.positions: tuple[Position, ...] = tuple(positions)
        self.account = account
        self.hedging = hedging
        """True on a hedging account (several positions per symbol), False on a netting one."""
        self.intents: list[Intent] = []

    # -- reading ------------------------------------------------------------------------------------
    def closes(self, count: int | None = None) -> list[float]:
        """Close prices of the last ``count`` closed bars (all of them by default), oldest first."""
        bars = self.bars if count is None else self.bars[-count:]
        return [bar.close for bar in bars]

    def positions_of(self, side: Side) -> tuple[Position, ...]:
        return tuple(p for p in self.positions if p.side is side)

    @property
    def net_volume(self) -> float:
        """Long volume minus short volume of this robot's positions."""
        return sum(p.volume if p.side is Side.BUY else -p.volume for p in self.positions)

    # -- asking -------------------------------------------------------------------------------------
    def buy(self, *, sl: float | None = None, tp: float | None = None) -> None:
        """Open a long position at the market, sized by the allocation; ``sl``/``tp`` are prices."""
        self.intents.append(Intent("open", Side.BUY, sl=sl, tp=tp))

    def sell(self, *, sl: float | None = None, tp: float | None = None) -> None:
        """Open a short position at the market, sized by the allocation; ``sl``/``tp`` are prices."""
        self.intents.append(Intent("open", Side.SELL, sl=sl, tp=tp))

    def open(self, side: Side, *, sl: float | None = None, tp: float | None = None) -> None:
        """:meth:`buy` or :meth:`sell` by ``side``."""
        self.intents.append(Intent("open", side, sl=sl, tp=tp))

    def close(self, position: Position, volume: float | None = None) -> None:
        """Close ``position`` at the market (partly, with ``volume``)."""
        self.intents.append(Intent("close", position.side, position=position.ticket, volume=volume))

    def close_all(self, side: Side | None = None) -> None:
        """Close every position of this robot (only those of ``side`` if given)."""
        for position in self.positions:
            if side is None or position.side is side:
                self.close(position)

    def modify(self, position: Position, *, sl: float | None = None, tp: float | None = None) -> None:
        """Move the stop loss and/or take profit of ``position`` (prices; ``None`` keeps a level)."""
        self.intents.append(Intent("modify", position.side, position=position.ticket, sl=sl, tp=tp))


class Robot(Generic[P]):
    """Base of every robot. Subclasses set ``name``, ``description`` and ``params_model`` and override
    the hooks they need. The host makes one instance per allocation, with validated parameters."""

    name: ClassVar[str] = ""
    """Catalogue name: lower case letters, digits and ``_``, starting with a letter."""
    description: ClassVar[str] = ""
    """One honest line: what it does and when it trades."""
    params_model: ClassVar[type[Params]] = Params
    history: ClassVar[int] = 200
    """How many closed bars ``Context.bars`` keeps (also the warm-up read at start)."""

    def __init__(self, params: P) -> None:
        self.params = params

    def on_start(self, ctx: Context) -> None:
        """Called once when the robot starts (or restarts after a portfolio change)."""

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        """Called for every closed bar of the allocation's timeframe; ``bar`` is ``ctx.bars[-1]``."""

    def on_tick(self, ctx: Context, quote: Quote) -> None:
        """Called for new prices (at most once per batch the host receives). Most robots leave it alone."""

    def on_order_update(self, ctx: Context, update: OrderUpdate) -> None:
        """Called with every lifecycle change of this robot's orders (filled, rejected, ...)."""

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        """Called for every deal of this robot's orders."""

    def on_stop(self, ctx: Context) -> None:
        """Called once when the robot is stopped (portfolio change, agent shutdown). Orders asked for
        here are still sent."""

    @classmethod
    def wants_ticks(cls) -> bool:
        return cls.on_tick is not Robot.on_tick
