"""The ``sim`` backend: a :class:`~mtrobot.broker.terminal.Terminal` talking to the simulated broker.

:class:`SimTerminal` is the client half for both ways of reaching the simulator: over TCP
(:class:`TcpTransport`, backend ``"sim"``) or in process (``mtrobot.sim.inprocess``, backend
``"sim-inprocess"``). Argument checks and every answer come from the server, so both behave the same.

Link failures map to the codes a real terminal gives (MT5_REFERENCE.md section 8): a call on a dead link
fails with (-10004, 'No IPC connection') and was certainly not executed; an answer lost after the request
went out gives (-10002, 'IPC recv failed') and one that never comes (-10005, 'IPC timeout'): for
``order_send`` both mean the order may have executed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from mtrobot.broker import constants as mt5
from mtrobot.broker.simproto import HEADER, MAX_FRAME, PROTOCOL_VERSION, decode_value, pack_frame, unpack_body
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
from mtrobot.broker.terminal import DateLike, Terminal, TradeRequestDict

if TYPE_CHECKING:
    from mtrobot.broker.arrays import RatesArray, TicksArray

NO_IPC = (mt5.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
RECV_FAILED = (mt5.RES_E_INTERNAL_FAIL_RECEIVE, "IPC recv failed")
IPC_TIMEOUT = (mt5.RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout")
SUCCESS = (mt5.RES_S_OK, "Success")
INVALID = (mt5.RES_E_INVALID_PARAMS, "Terminal: Invalid params")


class LinkError(Exception):
    """Base of transport failures."""


class NotSent(LinkError):
    """The link was already down: the request certainly did not reach the server."""


class ReplyLost(LinkError):
    """The link went down after the request was sent: it may have been executed."""


class ReplyTimeout(LinkError):
    """No answer in time: the request may have been executed."""


class Transport(Protocol):
    @property
    def closed(self) -> bool: ...

    async def connect(self, timeout: float) -> None:
        """Open the link; raises :class:`LinkError` when the server cannot be reached."""
        ...

    async def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]: ...

    async def close(self) -> None: ...


class TcpTransport:
    """Length-prefixed msgpack frames over TCP; one background reader matches answers by id."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    async def connect(self, timeout: float) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self._host, self._port), timeout
            )
        except (OSError, TimeoutError) as exc:
            raise NotSent(str(exc)) from exc
        self._closed = False
        self._task = asyncio.create_task(self._read_loop(), name=f"sim-client-{self._port}")

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                size = HEADER.unpack(await self._reader.readexactly(HEADER.size))[0]
                if size > MAX_FRAME:
                    break
                message = unpack_body(await self._reader.readexactly(size))
                if message.get("gone"):  # the server closed the session: nothing waiting was processed
                    gone = NotSent("the server closed the session")
                    for waiting in self._waiting.values():
                        if not waiting.done():
                            waiting.set_exception(gone)
                    break
                future = self._waiting.pop(message.get("id", -1), None)
                if future is not None and not future.done():
                    future.set_result(message)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self._closed = True
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ReplyLost("connection closed"))
            self._waiting.clear()

    async def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self._closed or self._writer is None:
            raise NotSent("not connected")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message["id"]] = future
        try:
            try:
                self._writer.write(pack_frame(message))
                await self._writer.drain()
            except ConnectionError as exc:
                # The reader may have settled the future while drain() yielded (the peer's FIN read as the
                # call started): its verdict, or an answer, is what the call gets.
                if not future.done():
                    raise ReplyLost(str(exc)) from exc
            async with asyncio.timeout(timeout):  # no wait_for: its waiter and callbacks on every call
                return await future
        except TimeoutError:
            raise ReplyTimeout("no answer") from None
        finally:  # however the call ends (cancelled too), no future is left for the reader to fail unseen
            self._waiting.pop(message["id"], None)
            future.cancel()

    async def close(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 2)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def _wire(value: Any) -> Any:
    """Datetimes become epoch seconds, as the real module converts them (naive = local time)."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    return value


class SimTerminal:
    """The MetaTrader5 module's functions against the simulator (see :class:`Terminal`).

    ``login``/``password``/``server`` given here play the part of the account a terminal has stored: used
    by ``initialize()`` when it is called without them. ``algo_trading`` and ``tradeapi_disabled`` are the
    terminal's own switches (off / on -> trade requests refused with 10027 / -8)."""

    def __init__(
        self,
        transport_factory: Callable[[], Transport],
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        algo_trading: bool = True,
        tradeapi_disabled: bool = False,
        call_timeout: float = 60.0,
    ) -> None:
        self._factory = transport_factory
        self._stored = (login, password, server)
        self._terminal = {"algo_trading": algo_trading, "tradeapi_disabled": tradeapi_disabled}
        self._call_timeout = call_timeout
        self._transport: Transport | None = None
        self._error: tuple[int, str] = SUCCESS
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SimTerminal(login={self._stored[0]}, server={self._stored[2]!r})"

    async def _send(self, kind: str, op: str, args: list[Any], kwargs: dict[str, Any], timeout: float) -> Any:
        transport = self._transport
        if transport is None or transport.closed:
            raise NotSent("not initialized")
        message = {"v": PROTOCOL_VERSION, "id": next(self._ids), "t": kind, "op": op, "a": args, "k": kwargs}
        answer = await transport.request(message, timeout)
        error = answer.get("e") or list(INVALID)
        self._error = (int(error[0]), str(error[1]))
        return decode_value(answer.get("r"))

    async def _call(self, op: str, failure: Any, *args: Any, **kwargs: Any) -> Any:
        async with self._lock:
            try:
                wire_args = [_wire(a) for a in args]
                wire_kwargs = {k: _wire(v) for k, v in kwargs.items() if v is not None}
                return await self._send("call", op, wire_args, wire_kwargs, self._call_timeout)
            except NotSent:
                self._error = NO_IPC
            except ReplyLost:
                self._error = RECV_FAILED
                await self._drop()
            except ReplyTimeout:
                self._error = IPC_TIMEOUT
            except (TypeError, ValueError, OverflowError):  # not serialisable: refused before sending
                self._error = INVALID
            return failure

    async def call_function(self, op: str, failure: Any, *args: Any, **kwargs: Any) -> Any:
        """Any function of the simulator's terminal by name, arguments passed through as the caller gave
        them (the server checks them as the binding does): for a module-shaped face that must answer a
        wrong argument with ``(-2, ...)`` rather than a Python ``TypeError``. ``failure`` is returned when
        the link fails."""
        return await self._call(op, failure, *args, **kwargs)

    async def _drop(self) -> None:
        if self._transport is not None:
            await self._transport.close()

    # -- connection ------------------------------------------------------------------------------------
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
        await self._drop()
        stored_login, stored_password, stored_server = self._stored
        transport = self._factory()
        try:
            await transport.connect(max(0.1, timeout / 1000))
        except LinkError:
            self._error = IPC_TIMEOUT
            return False
        self._transport = transport
        try:
            async with self._lock:
                await self._send("hello", "hello", [], self._terminal, self._call_timeout)
        except LinkError:
            self._error = IPC_TIMEOUT
            await self._drop()
            return False
        args = [] if path is None else [path]
        ok = await self._call(
            "initialize",
            False,
            *args,
            login=login if login is not None else stored_login,
            password=password if password is not None else stored_password,
            server=server if server is not None else stored_server,
            timeout=timeout,
            portable=portable or None,
        )
        if not ok:
            await self._drop()
        return bool(ok)

    async def login(
        self, login: int, /, *, password: str | None = None, server: str | None = None, timeout: int = 60000
    ) -> bool:
        return bool(
            await self._call("login", False, login, password=password, server=server, timeout=timeout)
        )

    async def shutdown(self) -> None:
        if self._transport is not None and not self._transport.closed:
            await self._call("shutdown", None)
        await self._drop()
        self._transport = None
        self._error = SUCCESS

    async def version(self) -> tuple[int, int, str] | None:
        result = await self._call("version", None)
        return tuple(result) if result is not None else None

    async def last_error(self) -> tuple[int, str]:
        return self._error

    async def account_info(self) -> AccountInfo | None:
        return await self._call("account_info", None)  # type: ignore[no-any-return]

    async def terminal_info(self) -> TerminalInfo | None:
        return await self._call("terminal_info", None)  # type: ignore[no-any-return]

    # -- symbols ---------------------------------------------------------------------------------------
    async def symbols_total(self) -> int:
        return int(await self._call("symbols_total", 0) or 0)

    async def symbols_get(self, group: str | None = None) -> tuple[SymbolInfo, ...] | None:
        return await self._call("symbols_get", None, group=group)  # type: ignore[no-any-return]

    async def symbol_info(self, symbol: str, /) -> SymbolInfo | None:
        return await self._call("symbol_info", None, symbol)  # type: ignore[no-any-return]

    async def symbol_info_tick(self, symbol: str, /) -> Tick | None:
        return await self._call("symbol_info_tick", None, symbol)  # type: ignore[no-any-return]

    async def symbol_select(self, symbol: str, enable: bool = True, /) -> bool:
        return bool(await self._call("symbol_select", False, symbol, enable))

    # -- orders, positions, history --------------------------------------------------------------------
    async def orders_total(self) -> int:
        return int(await self._call("orders_total", 0) or 0)

    async def orders_get(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradeOrder, ...] | None:
        return await self._call("orders_get", None, symbol=symbol, group=group, ticket=ticket)  # type: ignore[no-any-return]

    async def positions_total(self) -> int:
        return int(await self._call("positions_total", 0) or 0)

    async def positions_get(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradePosition, ...] | None:
        return await self._call("positions_get", None, symbol=symbol, group=group, ticket=ticket)  # type: ignore[no-any-return]

    async def history_orders_total(self, date_from: DateLike, date_to: DateLike, /) -> int:
        return int(await self._call("history_orders_total", 0, date_from, date_to) or 0)

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
        dates = [d for d in (date_from, date_to) if d is not None]
        return await self._call(  # type: ignore[no-any-return]
            "history_orders_get", None, *dates, group=group, ticket=ticket, position=position
        )

    async def history_deals_total(self, date_from: DateLike, date_to: DateLike, /) -> int:
        return int(await self._call("history_deals_total", 0, date_from, date_to) or 0)

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
        dates = [d for d in (date_from, date_to) if d is not None]
        return await self._call(  # type: ignore[no-any-return]
            "history_deals_get", None, *dates, group=group, ticket=ticket, position=position
        )

    # -- calculations and trading ----------------------------------------------------------------------
    async def order_calc_margin(
        self, action: int, symbol: str, volume: float, price: float, /
    ) -> float | None:
        return await self._call("order_calc_margin", None, action, symbol, volume, price)  # type: ignore[no-any-return]

    async def order_calc_profit(
        self, action: int, symbol: str, volume: float, price_open: float, price_close: float, /
    ) -> float | None:
        return await self._call(  # type: ignore[no-any-return]
            "order_calc_profit", None, action, symbol, volume, price_open, price_close
        )

    async def order_check(self, request: TradeRequestDict, /) -> OrderCheckResult | None:
        return await self._call("order_check", None, request)  # type: ignore[no-any-return]

    async def order_send(self, request: TradeRequestDict, /) -> OrderSendResult | None:
        return await self._call("order_send", None, request)  # type: ignore[no-any-return]

    # -- bars and ticks --------------------------------------------------------------------------------
    async def copy_rates_from(
        self, symbol: str, timeframe: int, date_from: DateLike, count: int, /
    ) -> RatesArray | None:
        return await self._call("copy_rates_from", None, symbol, timeframe, date_from, count)  # type: ignore[no-any-return]

    async def copy_rates_from_pos(
        self, symbol: str, timeframe: int, start_pos: int, count: int, /
    ) -> RatesArray | None:
        return await self._call("copy_rates_from_pos", None, symbol, timeframe, start_pos, count)  # type: ignore[no-any-return]

    async def copy_rates_range(
        self, symbol: str, timeframe: int, date_from: DateLike, date_to: DateLike, /
    ) -> RatesArray | None:
        return await self._call("copy_rates_range", None, symbol, timeframe, date_from, date_to)  # type: ignore[no-any-return]

    async def copy_ticks_from(
        self, symbol: str, date_from: DateLike, count: int, flags: int, /
    ) -> TicksArray | None:
        return await self._call("copy_ticks_from", None, symbol, date_from, count, flags)  # type: ignore[no-any-return]

    async def copy_ticks_range(
        self, symbol: str, date_from: DateLike, date_to: DateLike, flags: int, /
    ) -> TicksArray | None:
        return await self._call("copy_ticks_range", None, symbol, date_from, date_to, flags)  # type: ignore[no-any-return]


def open_sim_terminal(host: str = "127.0.0.1", port: int = 0, **options: Any) -> SimTerminal:
    """Backend ``"sim"``: a terminal on the simbroker at ``host:port`` (``DATA_DIR/run/simbroker.json``)."""
    if not port:
        raise ValueError("port: the simbroker's port is required")
    return SimTerminal(lambda: TcpTransport(host, port), **options)


def _conforms(terminal: SimTerminal) -> Terminal:
    """Never called: lets mypy prove that SimTerminal has the Terminal interface, signature for signature."""
    return terminal
