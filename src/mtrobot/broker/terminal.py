"""The MT5 terminal interface: an async mirror of the ``MetaTrader5`` Python module, trading access only.

Every backend (the simulator over TCP or in process, the real ``MetaTrader5`` package, an ``mt5linux``
bridge) implements :class:`Terminal` with the module's own parameter names, positional/keyword rules and
results (MT5_REFERENCE.md section 1):

- functions that fail return ``None`` (``False`` for the ``bool`` ones) and ``last_error()`` tells why,
  as ``(code, description)`` with the RES_* codes;
- results are the structures of :mod:`mtrobot.broker.structures`; ``copy_*`` return numpy structured
  arrays with the dtypes of :mod:`mtrobot.broker.arrays`;
- every time is an integer of the *trade server's* wall clock (section 6.13).

Deliberately absent: anything that moves money or changes account settings. MT5's trading protocol has no
funds transfer, and this interface adds none: whoever holds a ``Terminal`` can trade and read, no more.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from mtrobot.broker.structures import (
    AccountInfo,
    OrderCheckResult,
    OrderSendResult,
    SymbolInfo,
    TerminalInfo,
    Tick,
    TradeDeal,
    TradeOrder,
    TradePosition,
)

if TYPE_CHECKING:  # numpy only where arrays are built (mtrobot.broker.arrays): the order path needs none
    from mtrobot.broker.arrays import RatesArray, TicksArray

DateLike: TypeAlias = datetime | int | float
"""A ``datetime`` (tz-aware: converted to epoch seconds; naive: local time, as the real module does) or epoch
seconds of the server clock."""

TradeRequestDict: TypeAlias = dict[str, Any]
"""A trade request as the real module takes it: a dict with the TradeRequest keys (section 5)."""


TERMINAL_FUNCTIONS: tuple[str, ...] = (
    "initialize",
    "login",
    "shutdown",
    "version",
    "last_error",
    "account_info",
    "terminal_info",
    "symbols_total",
    "symbols_get",
    "symbol_info",
    "symbol_info_tick",
    "symbol_select",
    "orders_total",
    "orders_get",
    "positions_total",
    "positions_get",
    "history_orders_total",
    "history_orders_get",
    "history_deals_total",
    "history_deals_get",
    "order_calc_margin",
    "order_calc_profit",
    "order_check",
    "order_send",
    "copy_rates_from",
    "copy_rates_from_pos",
    "copy_rates_range",
    "copy_ticks_from",
    "copy_ticks_range",
)
"""Every function of the interface, in the order of MT5_REFERENCE.md section 1."""


@runtime_checkable
class Terminal(Protocol):
    """One terminal session (one account at a time), async. See the module docstring for the rules."""

    async def initialize(
        self,
        path: str | None = None,
        /,
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        timeout: int = 60000,
        portable: bool = False,
    ) -> bool:
        """Attach to the terminal (and log in when login/password/server are given)."""
        ...

    async def login(
        self, login: int, /, *, password: str | None = None, server: str | None = None, timeout: int = 60000
    ) -> bool:
        """Switch the attached terminal to another account."""
        ...

    async def shutdown(self) -> None:
        """Close the connection to the terminal (the terminal itself keeps running)."""
        ...

    async def version(self) -> tuple[int, int, str] | None:
        """``(terminal version, build, build date)``."""
        ...

    async def last_error(self) -> tuple[int, str]:
        """The RES_* code and description of the last failure (``(1, 'Success')`` after a success)."""
        ...

    async def account_info(self) -> AccountInfo | None: ...

    async def terminal_info(self) -> TerminalInfo | None: ...

    async def symbols_total(self) -> int: ...

    async def symbols_get(self, group: str | None = None) -> tuple[SymbolInfo, ...] | None:
        """All symbols, or those matching ``group`` (comma-separated ``*`` masks, ``!`` excludes)."""
        ...

    async def symbol_info(self, symbol: str, /) -> SymbolInfo | None: ...

    async def symbol_info_tick(self, symbol: str, /) -> Tick | None: ...

    async def symbol_select(self, symbol: str, enable: bool = True, /) -> bool:
        """Show (``True``) or hide a symbol in Market Watch. Always pass ``enable``."""
        ...

    async def orders_total(self) -> int: ...

    async def orders_get(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradeOrder, ...] | None:
        """Active (pending) orders; with ``symbol`` given, ``ticket`` is ignored."""
        ...

    async def positions_total(self) -> int: ...

    async def positions_get(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradePosition, ...] | None: ...

    async def history_orders_total(self, date_from: DateLike, date_to: DateLike, /) -> int: ...

    async def history_orders_get(
        self,
        date_from: DateLike | None = None,
        date_to: DateLike | None = None,
        /,
        *,
        group: str | None = None,
        ticket: int | None = None,
        position: int | None = None,
    ) -> tuple[TradeOrder, ...] | None:
        """Historical orders: by time range (and ``group``), or by ``ticket``, or by ``position`` id."""
        ...

    async def history_deals_total(self, date_from: DateLike, date_to: DateLike, /) -> int: ...

    async def history_deals_get(
        self,
        date_from: DateLike | None = None,
        date_to: DateLike | None = None,
        /,
        *,
        group: str | None = None,
        ticket: int | None = None,
        position: int | None = None,
    ) -> tuple[TradeDeal, ...] | None:
        """Deals: by time range (and ``group``), or by ``ticket`` = the *order* ticket, or by ``position``."""
        ...

    async def order_calc_margin(
        self, action: int, symbol: str, volume: float, price: float, /
    ) -> float | None:
        """Margin for one BUY/SELL in account currency, ignoring existing positions."""
        ...

    async def order_calc_profit(
        self, action: int, symbol: str, volume: float, price_open: float, price_close: float, /
    ) -> float | None: ...

    async def order_check(self, request: TradeRequestDict, /) -> OrderCheckResult | None:
        """Dry run: validation and funds; success is ``retcode == 0``."""
        ...

    async def order_send(self, request: TradeRequestDict, /) -> OrderSendResult | None:
        """Send a trade request. ``None`` means the client refused it (-2) or the link failed (the request
        may have reached the server: look it up before any resend)."""
        ...

    async def copy_rates_from(
        self, symbol: str, timeframe: int, date_from: DateLike, count: int, /
    ) -> RatesArray | None: ...

    async def copy_rates_from_pos(
        self, symbol: str, timeframe: int, start_pos: int, count: int, /
    ) -> RatesArray | None: ...

    async def copy_rates_range(
        self, symbol: str, timeframe: int, date_from: DateLike, date_to: DateLike, /
    ) -> RatesArray | None: ...

    async def copy_ticks_from(
        self, symbol: str, date_from: DateLike, count: int, flags: int, /
    ) -> TicksArray | None: ...

    async def copy_ticks_range(
        self, symbol: str, date_from: DateLike, date_to: DateLike, flags: int, /
    ) -> TicksArray | None: ...


FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {"deposit", "withdraw", "transfer", "change_password", "set_leverage", "account_settings"}
)
"""Names no backend may expose (checked by the conformance suite): trading access only."""
