"""A recording stand-in of the official ``MetaTrader5`` module (MT5_REFERENCE.md §1, §3, §8).

``FakeMT5()`` is module-shaped: the official function names, their positional/keyword rules, C-like result
types, numpy structured arrays for bars and ticks, ``None`` (or ``False``) plus ``last_error()`` on failure,
and ``(-2, 'Invalid "x" argument')`` for an argument of the wrong type. It also has what a test needs and a
real terminal never gives on demand, all named ``standin_*``:

- a record of every call with the thread it ran on, and the most calls that were ever in flight at once
  (the official module is not thread-safe; a backend must serialise);
- scripted failures: fail a call, lose the IPC link in the middle of a call (the effect may have happened,
  the answer is lost), kill the whole process in the middle of a call (for a bridge server);
- blocking calls: a call waits at a gate until released, so a test can prove the event loop keeps running.

The same object serves the in-process ``metatrader5`` backend and, registered as ``sys.modules
["MetaTrader5"]`` in a bridge server process, the ``mt5linux`` backend over rpyc.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from mtrobot.broker import constants as c

from .ctypes_like import CResult, build, c_type, defaults
from .fake_market import Market, matches_group

SUCCESS = (1, "Success")
NO_IPC = (-10004, "No IPC connection")
ORDINALS = ("1st", "2nd", "3rd", "4th", "5th")
STRUCT_NAMES = (
    "AccountInfo",
    "TerminalInfo",
    "SymbolInfo",
    "Tick",
    "TradeOrder",
    "TradePosition",
    "TradeDeal",
    "TradeRequest",
    "OrderCheckResult",
    "OrderSendResult",
)
FLOAT_FIELDS = ("volume", "price", "stoplimit", "sl", "tp")
STR_FIELDS = ("symbol", "comment")
INT_FIELDS = (
    "action",
    "magic",
    "order",
    "deviation",
    "type",
    "type_filling",
    "type_time",
    "expiration",
    "position",
    "position_by",
)
SAFE_COMMENT = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-")


class Failed(Exception):
    """Raised inside an implementation: the call returns its failure value with this ``last_error``."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(code, description)
        self.code, self.description = code, description


# Argument kinds, checked like the C module does: strictly.
def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _float(v: object) -> bool:
    return isinstance(v, float)


def _number(v: object) -> bool:
    return _int(v) or _float(v)


def _str(v: object) -> bool:
    return isinstance(v, str)


def _bool(v: object) -> bool:
    return isinstance(v, bool)


def _time(v: object) -> bool:
    return isinstance(v, datetime) or _int(v)


def _dict(v: object) -> bool:
    return isinstance(v, dict)


def seconds(value: datetime | int) -> int:
    return int(value.timestamp()) if isinstance(value, datetime) else value


Kind = Callable[[object], bool]


def api(
    *,
    pos: tuple[tuple[str, Kind], ...] = (),
    opt: tuple[tuple[str, Kind], ...] = (),
    kw: tuple[tuple[str, Kind], ...] = (),
    failure: object = None,
    needs_ipc: bool = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare an official function: positional-only ``pos`` then ``opt``, keyword-only ``kw``."""

    def wrap(impl: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(impl)
        def call(self: FakeMT5, *args: Any, **kwargs: Any) -> Any:
            return self._run(impl, args, kwargs, pos, opt, dict(kw), failure, needs_ipc)

        return call

    return wrap


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    thread_id: int


@dataclass
class Script:
    kind: str  # "fail" | "drop" | "crash"
    code: int = 0
    description: str = ""


class FakeMT5:
    """One terminal with one logged-in account, reachable like the ``MetaTrader5`` module."""

    def __init__(
        self,
        *,
        login: int = 5001,
        password: str = "master-pw",
        server: str = "Standin-Demo",
        types: dict[str, type[CResult]] | None = None,
        extra_values: dict[str, Any] | None = None,
    ) -> None:
        self.__name__ = "MetaTrader5"
        self.__version__ = "5.0.5000"
        for name in dir(c):
            if name.isupper():
                setattr(self, name, getattr(c, name))
        self._types = {name: c_type(name) for name in STRUCT_NAMES} | (types or {})
        self._extra_values = extra_values or {}  # for fields only a wrong layout has
        self._account = {"login": login, "password": password, "server": server}
        self._lock = threading.Lock()
        self.standin_reset()

    def standin_reset(self) -> None:
        """Back to a fresh terminal: not attached, a new market, no scripts, an empty call record."""
        self._password = self._account["password"]
        self.market = Market(login=self._account["login"], server=self._account["server"])
        self._ipc = False
        self._algo_trading = True
        self._error: tuple[int, str] = SUCCESS
        self._calls: list[Call] = []
        self._inflight = 0
        self._max_inflight = 0
        self._scripts: dict[str, deque[Script]] = defaultdict(deque)
        for gate in getattr(self, "_gates", {}).values():
            gate.set()
        self._gates: dict[str, threading.Event] = {}
        self._entered: dict[str, threading.Event] = defaultdict(threading.Event)
        self._request_id = 0

    # ----- what tests control (never part of the official module) ------------------------------
    def standin_fail(self, name: str, code: int, description: str) -> None:
        """The next call of ``name`` fails before doing anything, with this ``last_error``."""
        self._scripts[name].append(Script("fail", code, description))

    def standin_drop(self, name: str, code: int = -10002, description: str = "IPC recv failed") -> None:
        """The next call of ``name`` does its work, then the IPC link dies before the answer comes back."""
        self._scripts[name].append(Script("drop", code, description))

    def standin_crash(self, name: str) -> None:
        """The next call of ``name`` kills this whole process in the middle (a bridge server dying)."""
        self._scripts[name].append(Script("crash"))

    def standin_block(self, name: str) -> None:
        """Calls of ``name`` wait at a gate until :meth:`standin_release`."""
        self._gates[name] = threading.Event()
        self._entered[name].clear()

    def standin_wait_entered(self, name: str, timeout: float = 10.0) -> bool:
        """Wait until a call of ``name`` reached its gate (a condition, not a sleep)."""
        return self._entered[name].wait(timeout)

    def standin_release(self, name: str) -> None:
        gate = self._gates.pop(name, None)
        if gate is not None:
            gate.set()

    def standin_disconnect(self) -> None:
        """The terminal goes away between calls: everything answers -10004 until initialize()."""
        self._ipc = False

    def standin_set_algo_trading(self, enabled: bool) -> None:
        self._algo_trading = enabled

    def standin_set_quote(self, symbol: str, bid: float, ask: float) -> None:
        self.market.set_quote(symbol, bid, ask)

    def standin_calls(self) -> tuple[tuple[str, int], ...]:
        """(function name, thread id) of every call so far, in order; plain tuples so rpyc copies them."""
        with self._lock:
            return tuple((call.name, call.thread_id) for call in self._calls)

    def standin_call_log(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def standin_max_inflight(self) -> int:
        return self._max_inflight

    def standin_inflight(self) -> int:
        return self._inflight

    def standin_pid(self) -> int:
        return os.getpid()

    # ----- the call machinery ------------------------------------------------------------------
    def _run(
        self,
        impl: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        pos: tuple[tuple[str, Kind], ...],
        opt: tuple[tuple[str, Kind], ...],
        kw: dict[str, Kind],
        failure: object,
        needs_ipc: bool,
    ) -> Any:
        name = impl.__name__
        with self._lock:
            self._calls.append(Call(name, args, dict(kwargs), threading.get_ident()))
            self._inflight += 1
            self._max_inflight = max(self._max_inflight, self._inflight)
        try:
            self._wait_at_gate(name)
            script = self._scripts[name].popleft() if self._scripts[name] else None
            if script is not None and script.kind == "crash":
                os._exit(17)
            if script is not None and script.kind == "fail":
                raise Failed(script.code, script.description)
            if needs_ipc and not self._ipc:
                raise Failed(*NO_IPC)
            parsed = self._parse(args, kwargs, pos, opt, kw)
            result = impl(self, *parsed[0], **parsed[1])
            if script is not None and script.kind == "drop":
                self._ipc = False
                raise Failed(script.code, script.description)
            if name != "last_error":
                self._error = SUCCESS
            return result
        except Failed as failed:
            self._error = (failed.code, failed.description)
            return failure
        finally:
            with self._lock:
                self._inflight -= 1

    def _wait_at_gate(self, name: str) -> None:
        gate = self._gates.get(name)
        if gate is not None:
            self._entered[name].set()
            gate.wait(timeout=30)

    @staticmethod
    def _parse(
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        pos: tuple[tuple[str, Kind], ...],
        opt: tuple[tuple[str, Kind], ...],
        kw: dict[str, Kind],
    ) -> tuple[list[Any], dict[str, Any]]:
        if args and not pos and not opt:
            raise Failed(-2, "Unnamed arguments not allowed")
        if not len(pos) <= len(args) <= len(pos) + len(opt):
            raise Failed(-2, "Invalid number of arguments")
        for index, (value, (_, kind)) in enumerate(zip(args, pos + opt, strict=False)):
            if not kind(value):
                raise Failed(-2, f"Invalid {ORDINALS[index]} unnamed argument")
        for key, value in kwargs.items():
            if key not in kw or not kw[key](value):
                raise Failed(-2, f'Invalid "{key}" argument')
        return list(args), kwargs

    def _make(self, name: str, values: dict[str, Any]) -> CResult:
        return build(self._types[name], {**self._extra_values, **values})

    # ----- session -----------------------------------------------------------------------------
    @api(
        opt=(("path", _str),),
        kw=(("login", _int), ("password", _str), ("server", _str), ("timeout", _int), ("portable", _bool)),
        failure=False,
        needs_ipc=False,
    )
    def initialize(
        self,
        path: str | None = None,
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        timeout: int = 60_000,
        portable: bool = False,
    ) -> bool:
        if path is not None and not path.lower().endswith("terminal64.exe"):
            raise Failed(-10003, "IPC initialize failed, MetaTrader 5 x64 not found")
        self._check_credentials(login, password, server)
        self._ipc = True
        return True

    @api(pos=(("login", _int),), kw=(("password", _str), ("server", _str), ("timeout", _int)), failure=False)
    def login(
        self, login: int, *, password: str | None = None, server: str | None = None, timeout: int = 60_000
    ) -> bool:
        self._check_credentials(login, password, server)
        return True

    def _check_credentials(self, login: int | None, password: str | None, server: str | None) -> None:
        if server is not None and server != self.market.server:
            raise Failed(-10005, "IPC timeout")
        if login is not None and login != self.market.login:
            raise Failed(-6, "Terminal: Authorization failed")
        if password is not None and password != self._password:
            raise Failed(-6, "Terminal: Authorization failed")

    @api(needs_ipc=False)
    def shutdown(self) -> None:
        self._ipc = False

    @api()
    def version(self) -> tuple[int, int, str]:
        return (500, 5000, "01 Sep 2026")

    @api(needs_ipc=False)
    def last_error(self) -> tuple[int, str]:
        return self._error

    @api()
    def account_info(self) -> CResult:
        return self._make("AccountInfo", self.market.account())

    @api()
    def terminal_info(self) -> CResult:
        values = defaults("TerminalInfo")
        values.update(
            connected=True,
            dlls_allowed=False,
            trade_allowed=self._algo_trading,
            build=5000,
            maxbars=100_000,
            codepage=0,
            ping_last=31_250,
            company="Stand-in Markets Ltd.",
            name="MetaTrader 5 stand-in",
            language="English",
            path="C:\\MT5\\acc5001",
            data_path="C:\\MT5\\acc5001",
            commondata_path="C:\\MT5\\common",
        )
        return self._make("TerminalInfo", values)

    # ----- symbols -----------------------------------------------------------------------------
    @api()
    def symbols_total(self) -> int:
        return len(self.market.symbols)

    @api(opt=(("group", _str),), kw=(("group", _str),))
    def symbols_get(self, group: str | None = None) -> tuple[CResult, ...]:
        return tuple(
            self._make("SymbolInfo", values)
            for name, values in self.market.symbols.items()
            if matches_group(name, group)
        )

    def _symbol(self, symbol: str) -> dict[str, Any]:
        if symbol not in self.market.symbols:
            raise Failed(-4, "Terminal: Not found")
        return self.market.symbols[symbol]

    @api(pos=(("symbol", _str),))
    def symbol_info(self, symbol: str) -> CResult:
        return self._make("SymbolInfo", self._symbol(symbol))

    @api(pos=(("symbol", _str),))
    def symbol_info_tick(self, symbol: str) -> CResult:
        self._symbol(symbol)
        return self._make("Tick", self.market.tick(symbol))

    @api(pos=(("symbol", _str),), opt=(("enable", _bool),), failure=False)
    def symbol_select(self, symbol: str, enable: bool = True) -> bool:
        self._symbol(symbol)["select"] = enable
        return True

    # ----- bars and ticks ----------------------------------------------------------------------
    @api(pos=(("symbol", _str), ("timeframe", _int), ("date_from", _time), ("count", _int)))
    def copy_rates_from(
        self, symbol: str, timeframe: int, date_from: datetime | int, count: int
    ) -> np.ndarray:
        self._bars_symbol(symbol)
        times = self.market.bar_times_back(timeframe, seconds(date_from), 0, count)
        return self.market.rates(symbol, timeframe, times)

    @api(pos=(("symbol", _str), ("timeframe", _int), ("start_pos", _int), ("count", _int)))
    def copy_rates_from_pos(self, symbol: str, timeframe: int, start_pos: int, count: int) -> np.ndarray:
        self._bars_symbol(symbol)
        times = self.market.bar_times_back(timeframe, self.market.clock, start_pos, count)
        return self.market.rates(symbol, timeframe, times)

    @api(pos=(("symbol", _str), ("timeframe", _int), ("date_from", _time), ("date_to", _time)))
    def copy_rates_range(
        self, symbol: str, timeframe: int, date_from: datetime | int, date_to: datetime | int
    ) -> np.ndarray:
        self._bars_symbol(symbol)
        times = self.market.bar_times_range(timeframe, seconds(date_from), seconds(date_to))
        return self.market.rates(symbol, timeframe, times)

    @api(pos=(("symbol", _str), ("date_from", _time), ("count", _int), ("flags", _int)))
    def copy_ticks_from(self, symbol: str, date_from: datetime | int, count: int, flags: int) -> np.ndarray:
        self._bars_symbol(symbol)
        ticks = self.market.ticks(symbol, seconds(date_from) * 1000, count)
        return ticks if flags != c.COPY_TICKS_TRADE else ticks[:0]

    @api(pos=(("symbol", _str), ("date_from", _time), ("date_to", _time), ("flags", _int)))
    def copy_ticks_range(
        self, symbol: str, date_from: datetime | int, date_to: datetime | int, flags: int
    ) -> np.ndarray:
        self._bars_symbol(symbol)
        start, end = seconds(date_from) * 1000, seconds(date_to) * 1000
        ticks = self.market.ticks(symbol, start, max(0, (end - start) // 500 + 1))
        ticks = ticks[ticks["time_msc"] <= end]
        return ticks if flags != c.COPY_TICKS_TRADE else ticks[:0]

    def _bars_symbol(self, symbol: str) -> None:
        if symbol not in self.market.symbols:
            raise Failed(-1, "Terminal: Call failed")

    # ----- the book ----------------------------------------------------------------------------
    @api()
    def orders_total(self) -> int:
        return len(self.market.orders)

    @api(kw=(("symbol", _str), ("group", _str), ("ticket", _int)))
    def orders_get(self, **filters: Any) -> tuple[CResult, ...]:
        return tuple(self._make("TradeOrder", o) for o in self._filter(self.market.orders.values(), filters))

    @api()
    def positions_total(self) -> int:
        return len(self.market.positions)

    @api(kw=(("symbol", _str), ("group", _str), ("ticket", _int)))
    def positions_get(self, **filters: Any) -> tuple[CResult, ...]:
        rows = self._filter(self.market.refreshed_positions(), filters)
        return tuple(self._make("TradePosition", p) for p in rows)

    @staticmethod
    def _filter(rows: Any, filters: dict[str, Any]) -> list[dict[str, Any]]:
        if "symbol" in filters:
            return [r for r in rows if r["symbol"] == filters["symbol"]]
        if "group" in filters:
            return [r for r in rows if matches_group(r["symbol"], filters["group"])]
        if "ticket" in filters:
            return [r for r in rows if r["ticket"] == filters["ticket"]]
        return list(rows)

    @api(pos=(("date_from", _time), ("date_to", _time)))
    def history_orders_total(self, date_from: datetime | int, date_to: datetime | int) -> int:
        return len(self._in_window(self.market.history_orders, "time_setup", date_from, date_to))

    @api(pos=(("date_from", _time), ("date_to", _time)))
    def history_deals_total(self, date_from: datetime | int, date_to: datetime | int) -> int:
        return len(self._in_window(self.market.deals, "time", date_from, date_to))

    @api(
        opt=(("date_from", _time), ("date_to", _time)),
        kw=(("group", _str), ("ticket", _int), ("position", _int)),
    )
    def history_orders_get(self, *window: Any, **filters: Any) -> tuple[CResult, ...]:
        rows = self._history(self.market.history_orders, "time_setup", window, filters, "ticket")
        return tuple(self._make("TradeOrder", row) for row in rows)

    @api(
        opt=(("date_from", _time), ("date_to", _time)),
        kw=(("group", _str), ("ticket", _int), ("position", _int)),
    )
    def history_deals_get(self, *window: Any, **filters: Any) -> tuple[CResult, ...]:
        # MT5 gotcha kept on purpose: ``ticket=`` selects deals by their *order* ticket.
        rows = self._history(self.market.deals, "time", window, filters, "order")
        return tuple(self._make("TradeDeal", row) for row in rows)

    def _history(
        self,
        rows: list[dict[str, Any]],
        time_key: str,
        window: tuple[Any, ...],
        filters: dict[str, Any],
        ticket_key: str,
    ) -> list[dict[str, Any]]:
        if "ticket" in filters:
            return [r for r in rows if r[ticket_key] == filters["ticket"]]
        if "position" in filters:
            return [r for r in rows if r["position_id"] == filters["position"]]
        if len(window) != 2:
            raise Failed(-2, "Invalid number of arguments")
        found = self._in_window(rows, time_key, *window)
        return [r for r in found if "group" not in filters or matches_group(r["symbol"], filters["group"])]

    @staticmethod
    def _in_window(
        rows: list[dict[str, Any]], key: str, start: datetime | int, end: datetime | int
    ) -> list[dict[str, Any]]:
        return [r for r in rows if seconds(start) <= r[key] <= seconds(end)]

    # ----- calculations and trading --------------------------------------------------------------
    @api(pos=(("action", _int), ("symbol", _str), ("volume", _number), ("price", _number)))
    def order_calc_margin(self, action: int, symbol: str, volume: float, price: float) -> float:
        self._symbol(symbol)
        return self.market.margin(symbol, float(volume), float(price))

    @api(
        pos=(
            ("action", _int),
            ("symbol", _str),
            ("volume", _number),
            ("price_open", _number),
            ("price_close", _number),
        )
    )
    def order_calc_profit(
        self, action: int, symbol: str, volume: float, price_open: float, price_close: float
    ) -> float:
        self._symbol(symbol)
        return self.market.profit(action, symbol, float(volume), float(price_open), float(price_close))

    @api(pos=(("request", _dict),))
    def order_check(self, request: dict[str, Any]) -> CResult:
        echo = self._echo(request)
        account = self.market.account()
        margin = self.market.margin(echo["symbol"], echo["volume"], echo["price"] or 1.0)
        values = {
            "retcode": c.TRADE_RETCODE_CHECK_OK,
            "balance": account["balance"],
            "equity": account["equity"],
            "profit": account["profit"],
            "margin": account["margin"] + margin,
            "margin_free": account["margin_free"] - margin,
            "margin_level": account["equity"] / (account["margin"] + margin) * 100 if margin else 0.0,
            "comment": "Done",
            "request": self._make("TradeRequest", echo),
        }
        return self._make("OrderCheckResult", values)

    @api(pos=(("request", _dict),))
    def order_send(self, request: dict[str, Any]) -> CResult:
        echo = self._echo(request)
        values = defaults("OrderSendResult")
        values["request"] = self._make("TradeRequest", echo)
        if not self._algo_trading:
            values.update(retcode=10027, comment="AutoTrading disabled by client")
            return self._make("OrderSendResult", values)
        self._request_id += 1
        values.update(self._execute(echo), request_id=self._request_id)
        self.market.advance()
        return self._make("OrderSendResult", values)

    def _echo(self, request: dict[str, Any]) -> dict[str, Any]:
        """Check every key like the C module (-2 on a wrong type) and return all 17 fields."""
        echo = defaults("TradeRequest")
        for key, value in request.items():
            ok = (
                (key in FLOAT_FIELDS and _float(value))
                or (key in STR_FIELDS and _str(value))
                or (key in INT_FIELDS and _int(value))
            )
            if key == "comment" and ok and (len(value) > 27 or not set(value) <= SAFE_COMMENT):
                ok = False
            if not ok:
                raise Failed(-2, f'Invalid "{key}" argument')
            echo[key] = value
        if "action" not in request:
            raise Failed(-2, 'Invalid "action" argument')
        return echo

    def _execute(self, req: dict[str, Any]) -> dict[str, Any]:
        market, action = self.market, req["action"]
        if req["symbol"] and req["symbol"] not in market.symbols:
            return {"retcode": 10013, "comment": "Invalid request"}
        if action == c.TRADE_ACTION_DEAL:
            return self._deal(req)
        if action == c.TRADE_ACTION_PENDING:
            ticket = market.take_ticket()
            market.place_order(req, ticket)
            return {
                "retcode": 10009,
                "order": ticket,
                "volume": req["volume"],
                "price": req["price"],
                "comment": "Request executed",
            }
        if action == c.TRADE_ACTION_REMOVE and req["order"] in market.orders:
            market.cancel_order(req["order"])
            return {"retcode": 10009, "order": req["order"], "comment": "Request executed"}
        if action == c.TRADE_ACTION_SLTP and req["position"] in market.positions:
            market.positions[req["position"]].update(sl=req["sl"], tp=req["tp"])
            return {"retcode": 10009, "comment": "Request executed"}
        if action == c.TRADE_ACTION_MODIFY and req["order"] in market.orders:
            market.orders[req["order"]].update(price_open=req["price"], sl=req["sl"], tp=req["tp"])
            return {"retcode": 10009, "order": req["order"], "comment": "Request executed"}
        return {"retcode": 10013, "comment": "Invalid request"}

    def _deal(self, req: dict[str, Any]) -> dict[str, Any]:
        market = self.market
        bid, ask = market.quote(req["symbol"])
        price = ask if req["type"] == c.ORDER_TYPE_BUY else bid
        order = market.take_ticket()
        if req["position"]:
            position = market.positions.get(req["position"])
            if position is None:
                return {"retcode": 10036, "comment": "Position closed", "bid": bid, "ask": ask}
            if req["volume"] > position["volume"] + 1e-9:
                return {"retcode": 10038, "comment": "Invalid close volume", "bid": bid, "ask": ask}
            deal = market.record_fill(req, order, price, c.DEAL_ENTRY_OUT, position["ticket"])
            market.deals[-1]["profit"] = market.profit(
                position["type"], req["symbol"], req["volume"], position["price_open"], price
            )
            market.balance = round(market.balance + market.deals[-1]["profit"], 2)
            position["volume"] = round(position["volume"] - req["volume"], 8)
            if position["volume"] <= 1e-9:
                del market.positions[position["ticket"]]
        else:
            deal = market.record_fill(req, order, price, c.DEAL_ENTRY_IN, order)
            market.open_position(req, order, price)
        return {
            "retcode": 10009,
            "deal": deal,
            "order": order,
            "volume": req["volume"],
            "price": price,
            "bid": bid,
            "ask": ask,
            "comment": "Request executed",
        }


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll a condition with a deadline (for tests that wait on another thread or process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
