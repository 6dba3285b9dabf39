"""A :class:`~mtrobot.broker.terminal.Terminal` over a blocking MT5 API, run on one dedicated worker thread.

The official ``MetaTrader5`` module blocks (a named-pipe round trip; up to a minute in ``initialize``) and is
not thread-safe; an mt5linux bridge blocks on a socket. :class:`ThreadedTerminal` runs every call of one
terminal on its own daemon thread, one at a time and in order, so the event loop never blocks and calls
never interleave. Results are copied into our structures *on that thread* (no C object or remote proxy
escapes), and ``last_error()`` is read right after the call that failed, before any other call can run.

Link failures keep the module's meaning (MT5_REFERENCE.md §8), so the connector has one reconnect path for
every backend: -10004 "no IPC connection" means the call was certainly not made; -10001/-10002/-10005 mean
it may have reached the terminal (for ``order_send``: look the order up before any resend).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import typing
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mtrobot.broker.results import (
    CONVERTERS,
    epoch_seconds,
    error_pair,
    failure_value,
    is_failure,
    needs_last_error,
)
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
from mtrobot.broker.terminal import DateLike, TradeRequestDict
from mtrobot.broker.worker import WorkerThread
from mtrobot.logging import get_logger

if TYPE_CHECKING:
    from mtrobot.broker.arrays import RatesArray, TicksArray

log = get_logger(__name__)

SUCCESS: tuple[int, str] = (1, "Success")
NO_IPC = -10004
IPC_FAILED = -10000
IPC_INIT = -10003
IPC_TIMEOUT = -10005
INITIALIZE_GRACE_S = 30.0
"""Extra seconds the worker gets beyond an ``initialize``/``login`` timeout before we give up waiting."""


IPC_TEXTS: dict[int, str] = {
    -10000: "IPC call failed",
    -10001: "IPC send failed",
    -10002: "IPC recv failed",
    -10003: "IPC initialize failed",
    -10004: "No IPC connection",
    -10005: "IPC timeout",
}
"""The module's own ``last_error`` texts for link failures: callers may compare them exactly, so what
happened in detail goes to the log, not into the description."""


class LinkLost(Exception):
    """Raised by a :class:`BlockingApi` when its link to the terminal failed: a RES_* code, and a detail
    for the log (an initialize failure keeps it in the description, as the module does)."""

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail
        text = IPC_TEXTS.get(code, IPC_TEXTS[IPC_FAILED])
        self.description = f"{text}, {detail}" if code == IPC_INIT and detail else text


class BlockingApi(Protocol):
    """The blocking side: run one function of the official API and say why it failed."""

    def call(self, function: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """Return ``(raw result, raw last_error or None)``; the error is read only when the call failed or a
        count came back 0 (:func:`~mtrobot.broker.results.needs_last_error`). Raise :class:`LinkLost` when
        the link itself failed."""
        ...

    def close(self) -> None:
        """Release the link (called on the worker thread)."""
        ...


class ModuleApi:
    """A :class:`BlockingApi` over an imported module-shaped object (the official ``MetaTrader5``)."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def call(self, function: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
        result = getattr(self.module, function)(*args, **kwargs)
        return result, self.module.last_error() if needs_last_error(function, result) else None

    def close(self) -> None:
        """Nothing to release: ``shutdown()`` is an interface call of its own."""


@dataclass(frozen=True, slots=True)
class TerminalDefaults:
    """Where the terminal is, used when ``initialize()`` is called without a path (the agent's case)."""

    path: str | None = None
    portable: bool = False


class ThreadedTerminal:
    """The async :class:`~mtrobot.broker.terminal.Terminal` over a :class:`BlockingApi` on one thread."""

    def __init__(
        self,
        api: BlockingApi,
        worker: WorkerThread,
        *,
        defaults: TerminalDefaults = TerminalDefaults(),
        call_timeout: float = 90.0,
        owns_worker: bool = False,
        label: str = "mt5",
    ) -> None:
        self._api = api
        self._worker = worker
        self._defaults = defaults
        self._call_timeout = call_timeout
        self._owns_worker = owns_worker
        self._label = label
        self._error: tuple[int, str] = SUCCESS
        self._stuck: concurrent.futures.Future[Any] | None = None
        if owns_worker:  # a reconnect builds a new terminal: the old one's thread must not linger
            weakref.finalize(self, worker.stop)

    @property
    def worker_thread_id(self) -> int | None:
        """The thread every call of this terminal runs on."""
        return self._worker.ident

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until a call that timed out or whose caller was cancelled has returned; ``False`` if it
        still runs after ``timeout`` seconds. Until then every call fails fast with -10004."""
        stuck = self._stuck
        if stuck is None or stuck.done():
            return True
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(stuck)), timeout)
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        """Release the link and, if this terminal owns it, stop its worker thread (no interface call)."""
        await asyncio.wrap_future(self._worker.submit(self._api.close))
        if self._owns_worker:
            self._worker.stop()

    # ----- the call pipeline -------------------------------------------------------------------
    async def _call(
        self,
        function: str,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        if self._stuck is not None and not self._stuck.done():
            log.info("mt5_terminal_busy", terminal=self._label, function=function, detail="an earlier call "
                     "that timed out still runs; this one was not made")  # fmt: skip
            self._error = (NO_IPC, IPC_TEXTS[NO_IPC])
            return failure_value(function)
        self._stuck = None
        limit = timeout if timeout is not None else self._call_timeout
        future = self._worker.submit(lambda: self._job(function, args, kwargs or {}))
        try:
            value, self._error = await asyncio.wait_for(asyncio.wrap_future(future), limit)
        except TimeoutError:
            self._error = self._timed_out(function, future, limit)
            return failure_value(function)
        except asyncio.CancelledError:
            if not future.cancelled():
                self._stuck = future  # it runs on; nobody will read its answer
            raise
        return value

    def _timed_out(
        self, function: str, future: concurrent.futures.Future[Any], limit: float
    ) -> tuple[int, str]:
        if future.cancelled():  # still queued behind a slow call: it never ran
            log.info("mt5_terminal_busy", terminal=self._label, function=function, seconds=limit,
                     detail="queued behind a slow call until the limit; this one was not made")  # fmt: skip
            return NO_IPC, IPC_TEXTS[NO_IPC]
        self._stuck = future
        log.warning("mt5_call_timeout", terminal=self._label, function=function, seconds=limit)
        return IPC_TIMEOUT, IPC_TEXTS[IPC_TIMEOUT]

    def _job(
        self, function: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, tuple[int, str]]:
        """Runs on the worker thread: the call, its error, and the copy of its result."""
        try:
            result, raw_error = self._api.call(function, args, kwargs)
            if is_failure(function, result):
                return failure_value(function), error_pair(raw_error)
            if raw_error is not None and error_pair(raw_error)[0] != SUCCESS[0]:
                return failure_value(function), error_pair(raw_error)  # a count of 0 that was a failure
            return CONVERTERS[function](result), SUCCESS
        except LinkLost as lost:
            report = log.info if lost.code == NO_IPC else log.warning  # not connected vs lost mid-call
            report(
                "mt5_link_lost", terminal=self._label, function=function, code=lost.code, detail=lost.detail
            )
            return failure_value(function), (lost.code, lost.description)
        except Exception as exc:  # never let a terminal fault escape as an exception: it is a failed call
            # Only the type is logged: the arguments may hold a password.
            log.error("mt5_call_failed", terminal=self._label, function=function, error=type(exc).__name__)
            return failure_value(function), (IPC_FAILED, IPC_TEXTS[IPC_FAILED])

    # ----- session ----------------------------------------------------------------------------
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
        path = path if path is not None else self._defaults.path
        kwargs: dict[str, Any] = {
            k: v for k, v in (("login", login), ("password", password), ("server", server)) if v is not None
        }
        kwargs["timeout"] = timeout
        if portable or self._defaults.portable:
            kwargs["portable"] = True
        args = (path,) if path else ()
        return bool(await self._call("initialize", args, kwargs, timeout / 1000 + INITIALIZE_GRACE_S))

    async def login(
        self, login: int, /, *, password: str | None = None, server: str | None = None, timeout: int = 60000
    ) -> bool:
        kwargs: dict[str, Any] = {
            k: v for k, v in (("password", password), ("server", server)) if v is not None
        }
        kwargs["timeout"] = timeout
        return bool(await self._call("login", (login,), kwargs, timeout / 1000 + INITIALIZE_GRACE_S))

    async def shutdown(self) -> None:
        await self._call("shutdown")

    async def last_error(self) -> tuple[int, str]:
        return self._error

    async def version(self) -> tuple[int, int, str] | None:
        return typing.cast(tuple[int, int, str] | None, await self._call("version"))

    # ----- account, terminal, symbols -----------------------------------------------------------
    async def account_info(self) -> AccountInfo | None:
        return typing.cast(AccountInfo | None, await self._call("account_info"))

    async def terminal_info(self) -> TerminalInfo | None:
        return typing.cast(TerminalInfo | None, await self._call("terminal_info"))

    async def symbols_total(self) -> int:
        return int(await self._call("symbols_total"))

    async def symbols_get(self, group: str | None = None) -> tuple[SymbolInfo, ...] | None:
        kwargs = {"group": group} if group is not None else {}
        return typing.cast(tuple[SymbolInfo, ...] | None, await self._call("symbols_get", (), kwargs))

    async def symbol_info(self, symbol: str, /) -> SymbolInfo | None:
        return typing.cast(SymbolInfo | None, await self._call("symbol_info", (symbol,)))

    async def symbol_info_tick(self, symbol: str, /) -> Tick | None:
        return typing.cast(Tick | None, await self._call("symbol_info_tick", (symbol,)))

    async def symbol_select(self, symbol: str, enable: bool = True, /) -> bool:
        # ``enable`` is always passed: what the module does without it is contradictory (§1).
        return bool(await self._call("symbol_select", (symbol, enable)))

    # ----- orders, positions, history -----------------------------------------------------------
    async def orders_total(self) -> int:
        return int(await self._call("orders_total"))

    async def orders_get(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradeOrder, ...] | None:
        kwargs = _given(symbol=symbol, group=group, ticket=ticket)
        return typing.cast(tuple[TradeOrder, ...] | None, await self._call("orders_get", (), kwargs))

    async def positions_total(self) -> int:
        return int(await self._call("positions_total"))

    async def positions_get(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradePosition, ...] | None:
        kwargs = _given(symbol=symbol, group=group, ticket=ticket)
        return typing.cast(tuple[TradePosition, ...] | None, await self._call("positions_get", (), kwargs))

    async def history_orders_total(self, date_from: DateLike, date_to: DateLike, /) -> int:
        return int(await self._call("history_orders_total", _window(date_from, date_to)))

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
        args = _window(date_from, date_to) if date_from is not None and date_to is not None else ()
        kwargs = _given(group=group, ticket=ticket, position=position)
        return typing.cast(
            tuple[TradeOrder, ...] | None, await self._call("history_orders_get", args, kwargs)
        )

    async def history_deals_total(self, date_from: DateLike, date_to: DateLike, /) -> int:
        return int(await self._call("history_deals_total", _window(date_from, date_to)))

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
        args = _window(date_from, date_to) if date_from is not None and date_to is not None else ()
        kwargs = _given(group=group, ticket=ticket, position=position)
        return typing.cast(tuple[TradeDeal, ...] | None, await self._call("history_deals_get", args, kwargs))

    # ----- calculations and trading -------------------------------------------------------------
    async def order_calc_margin(
        self, action: int, symbol: str, volume: float, price: float, /
    ) -> float | None:
        args = (action, symbol, volume, price)
        return typing.cast(float | None, await self._call("order_calc_margin", args))

    async def order_calc_profit(
        self, action: int, symbol: str, volume: float, price_open: float, price_close: float, /
    ) -> float | None:
        args = (action, symbol, volume, price_open, price_close)
        return typing.cast(float | None, await self._call("order_calc_profit", args))

    async def order_check(self, request: TradeRequestDict, /) -> OrderCheckResult | None:
        result = await self._call("order_check", (request,))
        return typing.cast(OrderCheckResult | None, result)

    async def order_send(self, request: TradeRequestDict, /) -> OrderSendResult | None:
        result = await self._call("order_send", (request,))
        return typing.cast(OrderSendResult | None, result)

    # ----- bars and ticks -----------------------------------------------------------------------
    async def copy_rates_from(
        self, symbol: str, timeframe: int, date_from: DateLike, count: int, /
    ) -> RatesArray | None:
        args = (symbol, timeframe, epoch_seconds(date_from), count)
        return typing.cast("RatesArray | None", await self._call("copy_rates_from", args))

    async def copy_rates_from_pos(
        self, symbol: str, timeframe: int, start_pos: int, count: int, /
    ) -> RatesArray | None:
        return typing.cast(
            "RatesArray | None",
            await self._call("copy_rates_from_pos", (symbol, timeframe, start_pos, count)),
        )

    async def copy_rates_range(
        self, symbol: str, timeframe: int, date_from: DateLike, date_to: DateLike, /
    ) -> RatesArray | None:
        args = (symbol, timeframe, *_window(date_from, date_to))
        return typing.cast("RatesArray | None", await self._call("copy_rates_range", args))

    async def copy_ticks_from(
        self, symbol: str, date_from: DateLike, count: int, flags: int, /
    ) -> TicksArray | None:
        args = (symbol, epoch_seconds(date_from), count, flags)
        return typing.cast("TicksArray | None", await self._call("copy_ticks_from", args))

    async def copy_ticks_range(
        self, symbol: str, date_from: DateLike, date_to: DateLike, flags: int, /
    ) -> TicksArray | None:
        args = (symbol, *_window(date_from, date_to), flags)
        return typing.cast("TicksArray | None", await self._call("copy_ticks_range", args))


def _given(**kwargs: Any) -> dict[str, Any]:
    """Only the keyword filters actually given (the module treats a passed ``None`` as a wrong type)."""
    return {key: value for key, value in kwargs.items() if value is not None}


def _window(date_from: DateLike, date_to: DateLike) -> tuple[int, int]:
    return epoch_seconds(date_from), epoch_seconds(date_to)
