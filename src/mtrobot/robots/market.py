"""The robot host's read-only view of the market and the account (the ``MarketData`` port).

In an agent, :class:`TerminalMarketData` reads through the agent's terminal link: anything with the
``call(operation, *args)`` shape of the connector's ``BrokerLink`` (so every read is time-limited, audited,
and never slips between an ``order_send`` and the ``last_error`` that explains it). In a backtest the
port reads the simulator's books directly. Either way the port can only read: orders leave the host
through its ``submit`` coroutine, as OrderRequests.

A read that fails raises :class:`MarketDataError`; it never answers "no positions" for "I could not
ask", which would make a robot open a position it already has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import AccountInfo, SymbolInfo, Tick, TradePosition
from mtrobot.robots.api import Bar
from mtrobot.robots.bars import MT5_TIMEFRAMES

MAX_TICKS_PER_READ = 5_000


class MarketDataError(Exception):
    """The terminal could not answer a read (link down, timeout, unknown symbol)."""


class MarketData(Protocol):
    async def symbol(self, symbol: str) -> SymbolInfo:
        """The symbol's specification (digits, point, volume limits, tick value)."""
        ...

    async def ticks_since(self, symbol: str, since_msc: int) -> Sequence[Tick]:
        """Ticks newer than ``since_msc`` (trade server clock, ms), oldest first."""
        ...

    async def bars(self, symbol: str, timeframe: str, count: int) -> Sequence[Bar]:
        """The last ``count`` bars, oldest first; the last one is the bar still forming."""
        ...

    async def positions(self) -> Sequence[TradePosition]:
        """Every open position of the account."""
        ...

    async def account(self) -> AccountInfo: ...

    async def margin(self, buy: bool, symbol: str, volume: float, price: float) -> float:
        """Margin one new position of ``volume`` lots would need, in the account currency."""
        ...

    async def cash_flows(self, since_server_s: int) -> float:
        """Deposits minus withdrawals (BALANCE and CREDIT deals) since ``since_server_s``."""
        ...


class CallOutcome(Protocol):
    @property
    def value(self) -> Any: ...

    @property
    def ok(self) -> bool: ...


class TerminalCalls(Protocol):
    """The shape of the connector's ``BrokerLink.call``."""

    async def call(self, operation: str, *args: Any, **kwargs: Any) -> CallOutcome: ...


class TerminalMarketData:
    """:class:`MarketData` over the agent's terminal link (see the module docstring)."""

    def __init__(self, link: TerminalCalls) -> None:
        self._link = link
        self._selected: set[str] = set()

    async def _read(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        outcome = await self._link.call(operation, *args, **kwargs)
        if not outcome.ok or outcome.value is None:
            raise MarketDataError(f"{operation}{args!r} failed")
        return outcome.value

    async def _select(self, symbol: str) -> None:
        if symbol not in self._selected:  # ticks and bars of a symbol not in Market Watch are empty
            await self._read("symbol_select", symbol, True)
            self._selected.add(symbol)

    async def symbol(self, symbol: str) -> SymbolInfo:
        await self._select(symbol)
        info: SymbolInfo = await self._read("symbol_info", symbol)
        return info

    async def ticks_since(self, symbol: str, since_msc: int) -> Sequence[Tick]:
        await self._select(symbol)
        array = await self._read(
            "copy_ticks_from", symbol, since_msc // 1000, MAX_TICKS_PER_READ, mt5.COPY_TICKS_ALL
        )
        return [Tick(*row.tolist()) for row in array if int(row["time_msc"]) > since_msc]

    async def bars(self, symbol: str, timeframe: str, count: int) -> Sequence[Bar]:
        await self._select(symbol)
        array = await self._read("copy_rates_from_pos", symbol, MT5_TIMEFRAMES[timeframe], 0, count)
        return [
            Bar(
                int(r["time"]),
                float(r["open"]),
                float(r["high"]),
                float(r["low"]),
                float(r["close"]),
                int(r["tick_volume"]),
                int(r["spread"]),
            )
            for r in array
        ]

    async def positions(self) -> Sequence[TradePosition]:
        positions: Sequence[TradePosition] = await self._read("positions_get")
        return positions

    async def account(self) -> AccountInfo:
        info: AccountInfo = await self._read("account_info")
        return info

    async def margin(self, buy: bool, symbol: str, volume: float, price: float) -> float:
        action = mt5.ORDER_TYPE_BUY if buy else mt5.ORDER_TYPE_SELL
        return float(await self._read("order_calc_margin", action, symbol, float(volume), float(price)))

    async def cash_flows(self, since_server_s: int) -> float:
        outcome = await self._link.call("history_deals_get", since_server_s, 2**31 - 1)
        if not outcome.ok:
            raise MarketDataError("history_deals_get failed")
        deals = outcome.value or ()
        return float(sum(d.profit for d in deals if d.type in (mt5.DEAL_TYPE_BALANCE, mt5.DEAL_TYPE_CREDIT)))


class DirectCalls:
    """:class:`TerminalCalls` over a bare terminal object (tests, tools): ``call`` awaits the method."""

    def __init__(self, terminal: Any) -> None:
        self._terminal = terminal

    async def call(self, operation: str, *args: Any, **kwargs: Any) -> CallOutcome:
        value = await getattr(self._terminal, operation)(*args, **kwargs)
        return Outcome(value, value is not None and value is not False)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A :class:`CallOutcome`: the value, and whether the call succeeded."""

    value: Any
    ok: bool
