"""One terminal session on the simulated broker: the MetaTrader5 module's functions, server side.

A session is what one connected terminal is: at most one logged-in account, its Market Watch selection,
its Algo Trading switch and its request counter. :meth:`Session.call` takes a function name with its
positional and keyword arguments exactly as the client got them, checks them like the binding does, and
returns ``(result, (code, description))`` where the pair is what ``last_error()`` reports afterwards.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mtrobot.broker import constants as mt5
from mtrobot.broker.retcodes import retcode_comment
from mtrobot.broker.structures import OrderSendResult, TradeRequest
from mtrobot.broker.terminal import TERMINAL_FUNCTIONS
from mtrobot.sim import history, series, views
from mtrobot.sim.args import (
    InvalidArgument,
    arity,
    comment_safe,
    int_arg,
    invalid_field,
    is_int,
    kw_int,
    kw_str,
    number_arg,
    parse_request,
    str_arg,
)
from mtrobot.sim.book import BOOK_FUNCTIONS, book_levels
from mtrobot.sim.money import NoConversion
from mtrobot.sim.server import TradeServer
from mtrobot.sim.state import Account

if TYPE_CHECKING:
    from mtrobot.sim.broker import SimBroker

OK = (mt5.RES_S_OK, "Success")
NO_IPC = (mt5.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
IPC_TIMEOUT = (mt5.RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout")
AUTH_FAILED = (mt5.RES_E_AUTH_FAILED, "Terminal: Authorization failed")
NOT_FOUND = (mt5.RES_E_NOT_FOUND, "Terminal: Not found")
CALL_FAILED = (mt5.RES_E_FAIL, "Terminal: Call failed")
UNSUPPORTED = (mt5.RES_E_UNSUPPORTED, "Terminal: Unsupported function")
API_DISABLED = (mt5.RES_E_AUTO_TRADING_DISABLED, "Auto-Trading using Python API disabled in Terminal")

Reply = tuple[Any, tuple[int, str]]


class LoseReply(Exception):
    """Raised after an order_send was executed whose answer the fault injector wants lost."""

    def __init__(self, reply: Reply, mode: str) -> None:
        super().__init__(mode)
        self.reply = reply
        self.mode = mode


class Session:
    def __init__(
        self, broker: SimBroker, *, algo_trading: bool = True, tradeapi_disabled: bool = False
    ) -> None:
        self.broker = broker
        self.server: TradeServer | None = None
        self.account: Account | None = None
        self.investor = False
        self.selected: set[str] = set()
        self.books: set[str] = set()
        """Symbols whose depth of market this terminal subscribed to (market_book_add)."""
        self.algo_trading = algo_trading
        self.tradeapi_disabled = tradeapi_disabled
        self.request_seq = 0
        self.last_seen = time.monotonic()
        self.closed = False
        self._sends: deque[float] = deque()
        self.on_close: Callable[[], None] | None = None
        self._handlers: dict[str, Callable[[list[Any], dict[str, Any]], Reply]] = {
            name: getattr(self, f"_op_{name}") for name in _OPS
        }

    # -- lifecycle -------------------------------------------------------------------------------------
    def close(self) -> None:
        """Drop the session (shutdown, inactivity, an injected disconnect)."""
        if self.closed:
            return
        self.closed = True
        self.server = self.account = None
        self.broker.sessions.discard(self)
        if self.on_close is not None:
            self.on_close()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_seen

    def inactivity_limit(self) -> float:
        return self.server.config.inactivity_timeout_s if self.server else self.broker.default_inactivity_s

    def call(self, op: str, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        self.last_seen = time.monotonic()
        handler = self._handlers.get(op)
        if handler is None:
            return None, UNSUPPORTED
        try:
            return handler(args, kwargs)
        except InvalidArgument as exc:
            return _failure_value(op), (mt5.RES_E_INVALID_PARAMS, exc.text)

    def _require(self) -> tuple[TradeServer, Account]:
        if self.closed or self.server is None or self.account is None:
            raise _NoSession
        self.server.sync()
        return self.server, self.account

    # -- connection ------------------------------------------------------------------------------------
    def _login(self, login: int | None, password: str | None, server_name: str | None) -> Reply:
        if login is None or password is None or server_name is None:
            return False, AUTH_FAILED
        server = self.broker.servers.get(server_name)
        if server is None:
            return False, IPC_TIMEOUT  # an unknown or unreachable server times out rather than refusing
        now = server.now_ms()
        server.logins.append(now)
        if now < server.schedule.forced_until_ms:
            return False, IPC_TIMEOUT
        account = server.accounts.get(login)
        role = account.authenticate(password) if account is not None else None
        if account is None or role is None:
            return False, AUTH_FAILED
        self.server, self.account, self.investor = server, account, role == "investor"
        self.selected = {s.name for s in server.specs.values() if s.selected}
        self.broker.sessions.add(self)
        return True, OK

    def _op_initialize(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 1, 0, {"login", "password", "server", "timeout", "portable", "path"})
        if args and args[0] is not None and not isinstance(args[0], str):
            raise invalid_field("path")
        kw_int(kwargs, "timeout", 0, 2**31 - 1)
        if "portable" in kwargs and not isinstance(kwargs["portable"], bool):
            raise invalid_field("portable")
        return self._login(kw_int(kwargs, "login", 1), kw_str(kwargs, "password"), kw_str(kwargs, "server"))

    def _op_login(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 1, 1, {"password", "server", "timeout"})
        if not is_int(args[0]) or args[0] <= 0:
            raise invalid_field("login")
        kw_int(kwargs, "timeout", 0, 2**31 - 1)
        current = self.server.name if self.server else None
        return self._login(args[0], kw_str(kwargs, "password"), kw_str(kwargs, "server") or current)

    def _op_shutdown(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        self.close()
        return None, OK

    def _op_version(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        self._require()
        return views.TERMINAL_VERSION, OK

    def _op_account_info(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 0, 0, set())
        server, account = self._require()
        return views.account_info(server, account, self.investor), OK

    def _op_terminal_info(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 0, 0, set())
        server, _ = self._require()
        ping = 250 + server.faults.latency_ms * 1000
        return views.terminal_info(
            server, algo_trading=self.algo_trading, tradeapi_disabled=self.tradeapi_disabled, ping_us=ping
        ), OK

    # -- symbols ---------------------------------------------------------------------------------------
    def _op_symbols_total(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 0, 0, set())
        server, _ = self._require()
        return len(server.specs), OK

    def _op_symbols_get(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 1, 0, {"group"})
        if args and "group" in kwargs:
            raise InvalidArgument("Invalid number of arguments")
        group = args[0] if args else kwargs.get("group")
        if group is not None and (not isinstance(group, str) or len(group) > 256):
            raise invalid_field("group")
        server, account = self._require()
        specs = [s for s in server.specs.values() if group is None or views.matches_group(s.name, group)]
        return tuple(
            views.symbol_info(server, s, s.name in self.selected, account.currency) for s in specs
        ), OK

    def _symbol(self, server: TradeServer, name: str) -> Any:
        return server.specs.get(name)

    def _op_symbol_info(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 1, 1, set())
        name = str_arg(args, 0)
        server, account = self._require()
        spec = self._symbol(server, name)
        if spec is None:
            return None, NOT_FOUND
        return views.symbol_info(server, spec, name in self.selected, account.currency), OK

    def _op_symbol_info_tick(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 1, 1, set())
        name = str_arg(args, 0)
        server, _ = self._require()
        tick = server.quote(name) if name in self.selected else None
        return (tick, OK) if tick is not None else (None, NOT_FOUND)

    def _op_symbol_select(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 2, 1, set())
        name = str_arg(args, 0)
        enable = args[1] if len(args) > 1 else True
        if not isinstance(enable, bool):
            raise InvalidArgument("Invalid 2nd unnamed argument")
        server, account = self._require()
        if name not in server.specs:
            return False, NOT_FOUND
        if enable:
            self.selected.add(name)
            return True, OK
        in_use = any(p.symbol == name for p in account.positions.values()) or any(
            o.symbol == name for o in account.orders.values()
        )
        if in_use:
            return False, CALL_FAILED
        self.selected.discard(name)
        return True, OK

    # -- depth of market (mtrobot.sim.book) ------------------------------------------------------------
    def _op_market_book_add(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 1, 1, set())
        name = str_arg(args, 0)
        server, _ = self._require()
        if name not in server.specs:
            return False, NOT_FOUND
        self.books.add(name)
        return True, OK

    def _op_market_book_release(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 1, 1, set())
        name = str_arg(args, 0)
        self._require()
        if name not in self.books:
            return False, CALL_FAILED
        self.books.discard(name)
        return True, OK

    def _op_market_book_get(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 1, 1, set())
        name = str_arg(args, 0)
        server, _ = self._require()
        tick = server.quote(name)
        if name not in self.books or tick is None:
            return None, CALL_FAILED
        return book_levels(server.specs[name], tick, self.broker.config.seed), OK

    # -- orders, positions, history --------------------------------------------------------------------
    def _filter_kwargs(
        self, args: list[Any], kwargs: dict[str, Any]
    ) -> tuple[str | None, str | None, int | None]:
        arity(args, kwargs, 0, 0, {"symbol", "group", "ticket"})
        return kw_str(kwargs, "symbol"), kw_str(kwargs, "group"), kw_int(kwargs, "ticket")

    @staticmethod
    def _select(
        items: list[Any], symbol: str | None, group: str | None, ticket: int | None
    ) -> tuple[Any, ...]:
        if symbol is not None:
            items = [i for i in items if i.symbol == symbol]
        elif group is not None:
            items = [i for i in items if views.matches_group(i.symbol, group)]
        elif ticket is not None:
            items = [i for i in items if i.ticket == ticket]
        return tuple(i.to_struct() for i in sorted(items, key=lambda i: i.ticket))

    def _op_orders_total(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 0, 0, set())
        _, account = self._require()
        return len(account.orders), OK

    def _op_orders_get(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        symbol, group, ticket = self._filter_kwargs(args, kwargs)
        _, account = self._require()
        return self._select(list(account.orders.values()), symbol, group, ticket), OK

    def _op_positions_total(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 0, 0, set())
        _, account = self._require()
        return len(account.positions), OK

    def _op_positions_get(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        symbol, group, ticket = self._filter_kwargs(args, kwargs)
        server, account = self._require()
        for position in account.positions.values():
            server.refresh_position(account, position)
        return self._select(list(account.positions.values()), symbol, group, ticket), OK

    def _account(self) -> Account:
        return self._require()[1]

    def _op_history_orders_total(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        return history.orders_total(args, kwargs, self._account)

    def _op_history_deals_total(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        return history.deals_total(args, kwargs, self._account)

    def _op_history_orders_get(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        return history.orders_get(args, kwargs, self._account)

    def _op_history_deals_get(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        return history.deals_get(args, kwargs, self._account)

    # -- calculations ----------------------------------------------------------------------------------
    def _calc_args(self, args: list[Any], n: int) -> tuple[int, str, float, list[float]]:
        action = int_arg(args, 0)
        symbol = str_arg(args, 1)
        volume = number_arg(args, 2, 0)
        prices = [number_arg(args, i, 0) for i in range(3, n)]
        if action not in (mt5.ORDER_TYPE_BUY, mt5.ORDER_TYPE_SELL):
            raise InvalidArgument("Invalid 1st unnamed argument")
        return action, symbol, volume, prices

    def _op_order_calc_margin(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 4, 4, set())
        action, symbol, volume, (price,) = self._calc_args(args, 4)
        server, account = self._require()
        spec = server.specs.get(symbol)
        if spec is None:
            return None, NOT_FOUND
        try:
            margin = server.money.margin(
                spec, action == mt5.ORDER_TYPE_BUY, volume, price, account.leverage, account.currency
            )
        except NoConversion:
            return None, CALL_FAILED
        return round(margin, account.currency_digits), OK

    def _op_order_calc_profit(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        arity(args, kwargs, 5, 5, set())
        action, symbol, volume, (price_open, price_close) = self._calc_args(args, 5)
        server, account = self._require()
        spec = server.specs.get(symbol)
        if spec is None:
            return None, NOT_FOUND
        try:
            profit = server.money.profit(
                spec, action == mt5.ORDER_TYPE_BUY, volume, price_open, price_close, account.currency
            )
        except NoConversion:
            return None, CALL_FAILED
        return round(profit, account.currency_digits), OK

    # -- trading ---------------------------------------------------------------------------------------
    def _trade_request(self, args: list[Any], kwargs: dict[str, Any]) -> TradeRequest:
        if kwargs:
            raise InvalidArgument("Unnamed arguments only")
        if len(args) != 1:
            raise InvalidArgument("Invalid number of arguments")
        return parse_request(args[0])

    def _binding_checks(self, server: TradeServer, request: TradeRequest) -> None:
        """Checks some terminal builds make and others do not: on only when the server asks for them."""
        if server.config.strict_comments and not comment_safe(request.comment):
            raise invalid_field("comment")

    def _op_order_check(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        request = self._trade_request(args, kwargs)
        server, account = self._require()
        self._binding_checks(server, request)
        desk = self.broker.desk(server.name)
        return desk.check(account, request, can_trade=not self.investor), OK

    def _op_order_send(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        request = self._trade_request(args, kwargs)
        server, account = self._require()
        self._binding_checks(server, request)
        if self.tradeapi_disabled:
            return None, API_DISABLED
        if not self.algo_trading:
            code = mt5.TRADE_RETCODE_CLIENT_DISABLES_AT
            return OrderSendResult(code, 0, 0, 0.0, 0.0, 0.0, 0.0, retcode_comment(code), 0, 0, request), OK
        self.request_seq += 1
        if self._rate_limited(server):
            code = mt5.TRADE_RETCODE_TOO_MANY_REQUESTS
            return OrderSendResult(
                code, 0, 0, 0.0, 0.0, 0.0, 0.0, retcode_comment(code), self.request_seq, 0, request
            ), OK
        outcome = self.broker.desk(server.name).send(account, request, can_trade=not self.investor)
        result = OrderSendResult(
            outcome.retcode,
            outcome.deal,
            outcome.order,
            outcome.volume,
            outcome.price,
            outcome.bid,
            outcome.ask,
            outcome.comment,
            self.request_seq,
            0,
            request,
        )
        faults = server.faults
        if faults.lose_replies > 0:
            faults.lose_replies -= 1
            raise LoseReply((result, OK), faults.lose_mode)
        return result, OK

    def _rate_limited(self, server: TradeServer) -> bool:
        """At most ``max_requests_per_second`` order_send per second of the *broker's* clock: on a virtual
        clock a backtest is judged by simulated time, not by how fast this machine replays it."""
        limit = server.config.max_requests_per_second
        if not limit:
            return False
        now = server.clock.now_ms() / 1000
        while self._sends and now - self._sends[0] >= 1.0:
            self._sends.popleft()
        if len(self._sends) >= limit:
            return True
        self._sends.append(now)
        return False

    # -- bars and ticks (mtrobot.sim.series) -----------------------------------------------------------
    def _server(self) -> TradeServer:
        return self._require()[0]

    def _op_copy_rates_from(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        return series.copy_rates_from(args, kwargs, self._server)

    def _op_copy_rates_from_pos(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        return series.copy_rates_from_pos(args, kwargs, self._server)

    def _op_copy_rates_range(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        return series.copy_rates_range(args, kwargs, self._server)

    def _op_copy_ticks_from(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        return series.copy_ticks_from(args, kwargs, self._server)

    def _op_copy_ticks_range(self, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        return series.copy_ticks_range(args, kwargs, self._server)


class _NoSession(Exception):
    pass


# Every interface function but last_error, which the client answers from the last reply it got.
# The book functions are the simulator's too, outside the Terminal interface (no backend needs them).
_OPS = tuple(name for name in TERMINAL_FUNCTIONS if name != "last_error") + BOOK_FUNCTIONS

_BOOL_OPS = frozenset({"initialize", "login", "symbol_select", "market_book_add", "market_book_release"})
_INT_OPS = frozenset(
    {"symbols_total", "orders_total", "positions_total", "history_orders_total", "history_deals_total"}
)


def _failure_value(op: str) -> Any:
    if op in _BOOL_OPS:
        return False
    if op in _INT_OPS:
        return 0
    return None


def safe_call(session: Session, op: str, args: list[Any], kwargs: dict[str, Any]) -> Reply:
    """``session.call`` with the not-logged-in case mapped to MT5's answer (-10004, 'No IPC connection')."""
    try:
        return session.call(op, args, kwargs)
    except _NoSession:
        return _failure_value(op), NO_IPC
