"""The simulator as a drop-in ``MetaTrader5`` module: ``import mtrobot.mt5 as mt5`` (or, under
``mtrobot mt5 run``, an unmodified ``import MetaTrader5 as mt5``) and call it as the official package.

Same surface as the official package 5.0.6231 (MT5_REFERENCE.md sections 0-4 and 8): every function with
its positional and keyword rules, every constant with its value, the result structures (index and attribute
access, ``_asdict()``, the nested ``request``), numpy structured arrays for bars and ticks, ``None`` (or
``False``) plus ``last_error()`` on failure, and the undocumented ``Buy`` / ``Sell`` / ``Close``. The
terminal it talks to is the simulator (:mod:`mtrobot.mt5.target` says which one); ``docs/mt5-module.md``
lists what differs from a real terminal and why.
"""

from __future__ import annotations

import threading
from typing import Any

from mtrobot.broker.constants import ORDER_TYPE_BUY as _BUY
from mtrobot.broker.constants import ORDER_TYPE_SELL as _SELL
from mtrobot.mt5 import helpers as _helpers
from mtrobot.mt5.client import Mt5Client
from mtrobot.mt5.constants import CONSTANTS as _CONSTANTS
from mtrobot.mt5.results import TYPES as _TYPES

AccountInfo = _TYPES["AccountInfo"]
BookInfo = _TYPES["BookInfo"]
OrderCheckResult = _TYPES["OrderCheckResult"]
OrderSendResult = _TYPES["OrderSendResult"]
SymbolInfo = _TYPES["SymbolInfo"]
TerminalInfo = _TYPES["TerminalInfo"]
Tick = _TYPES["Tick"]
TradeDeal = _TYPES["TradeDeal"]
TradeOrder = _TYPES["TradeOrder"]
TradePosition = _TYPES["TradePosition"]
TradeRequest = _TYPES["TradeRequest"]

__version__ = "5.0.6231"
"""The version of the official package whose surface this module has."""
__author__ = "mtrobot (the MetaTrader5 package's interface on the mtrobot simulator)"

globals().update(_CONSTANTS)

_lock = threading.Lock()
_default: Mt5Client | None = None


def configure(**options: Any) -> Mt5Client:
    """Choose the simulator and defaults of this process's terminal before ``initialize()`` (options of
    :class:`~mtrobot.mt5.client.Mt5Client`: ``target``, ``server``, ``login``, ``simulator``...). Not part of
    the official package: scripts that must also run on a real terminal leave it to ``mtrobot mt5 run``."""
    global _default
    with _lock:
        if _default is not None:
            _default.shutdown()
        _default = Mt5Client(**options)
        return _default


def _client() -> Mt5Client:
    global _default
    with _lock:
        if _default is None:
            _default = Mt5Client()
        return _default


# -- connection -------------------------------------------------------------------------------------------
def initialize(*args: Any, **kwargs: Any) -> bool:
    """initialize([path], *, login=, password=, server=, timeout=60000, portable=False) -> bool."""
    return _client().initialize(*args, **kwargs)


def login(*args: Any, **kwargs: Any) -> bool:
    """login(login, *, password=, server=, timeout=60000) -> bool."""
    return _client().login(*args, **kwargs)


def shutdown(*args: Any, **kwargs: Any) -> None:
    return _client().shutdown(*args, **kwargs)


def version(*args: Any, **kwargs: Any) -> Any:
    """(terminal version, build, build date), e.g. (500, 5120, '01 Oct 2026')."""
    return _client().call("version", *args, **kwargs)


def last_error() -> tuple[int, str]:
    """(code, description) of the last call: the RES_* codes, (1, 'Success') after a success."""
    return _client().last_error()


def account_info(*args: Any, **kwargs: Any) -> Any:
    return _client().call("account_info", *args, **kwargs)


def terminal_info(*args: Any, **kwargs: Any) -> Any:
    return _client().call("terminal_info", *args, **kwargs)


# -- symbols and depth of market ------------------------------------------------------------------------
def symbols_total(*args: Any, **kwargs: Any) -> Any:
    return _client().call("symbols_total", *args, **kwargs)


def symbols_get(*args: Any, **kwargs: Any) -> Any:
    """symbols_get([group]) -> tuple of SymbolInfo; group: comma-separated masks, '!' excludes."""
    return _client().call("symbols_get", *args, **kwargs)


def symbol_info(*args: Any, **kwargs: Any) -> Any:
    return _client().call("symbol_info", *args, **kwargs)


def symbol_info_tick(*args: Any, **kwargs: Any) -> Any:
    return _client().call("symbol_info_tick", *args, **kwargs)


def symbol_select(*args: Any, **kwargs: Any) -> Any:
    """symbol_select(symbol, enable=True) -> bool. Always pass enable (the official docs contradict each
    other on the default)."""
    return _client().call("symbol_select", *args, **kwargs)


def market_book_add(*args: Any, **kwargs: Any) -> Any:
    return _client().call("market_book_add", *args, **kwargs)


def market_book_get(*args: Any, **kwargs: Any) -> Any:
    """Tuple of BookInfo, price descending (sells first); needs market_book_add first."""
    return _client().call("market_book_get", *args, **kwargs)


def market_book_release(*args: Any, **kwargs: Any) -> Any:
    return _client().call("market_book_release", *args, **kwargs)


# -- bars and ticks ---------------------------------------------------------------------------------------
def copy_rates_from(*args: Any, **kwargs: Any) -> Any:
    """copy_rates_from(symbol, timeframe, date_from, count) -> numpy array of bars."""
    return _client().call("copy_rates_from", *args, **kwargs)


def copy_rates_from_pos(*args: Any, **kwargs: Any) -> Any:
    """copy_rates_from_pos(symbol, timeframe, start_pos, count) -> numpy array of bars."""
    return _client().call("copy_rates_from_pos", *args, **kwargs)


def copy_rates_range(*args: Any, **kwargs: Any) -> Any:
    """copy_rates_range(symbol, timeframe, date_from, date_to) -> numpy array of bars."""
    return _client().call("copy_rates_range", *args, **kwargs)


def copy_ticks_from(*args: Any, **kwargs: Any) -> Any:
    """copy_ticks_from(symbol, date_from, count, flags) -> numpy array of ticks."""
    return _client().call("copy_ticks_from", *args, **kwargs)


def copy_ticks_range(*args: Any, **kwargs: Any) -> Any:
    """copy_ticks_range(symbol, date_from, date_to, flags) -> numpy array of ticks."""
    return _client().call("copy_ticks_range", *args, **kwargs)


# -- orders, positions, history ---------------------------------------------------------------------------
def orders_total(*args: Any, **kwargs: Any) -> Any:
    return _client().call("orders_total", *args, **kwargs)


def orders_get(*args: Any, **kwargs: Any) -> Any:
    """orders_get(*, symbol= | group= | ticket=) -> tuple of TradeOrder (empty when none)."""
    return _client().call("orders_get", *args, **kwargs)


def positions_total(*args: Any, **kwargs: Any) -> Any:
    return _client().call("positions_total", *args, **kwargs)


def positions_get(*args: Any, **kwargs: Any) -> Any:
    """positions_get(*, symbol= | group= | ticket=) -> tuple of TradePosition (empty when none)."""
    return _client().call("positions_get", *args, **kwargs)


def history_orders_total(*args: Any, **kwargs: Any) -> Any:
    return _client().call("history_orders_total", *args, **kwargs)


def history_orders_get(*args: Any, **kwargs: Any) -> Any:
    """history_orders_get(date_from, date_to, *, group=) | (*, ticket=) | (*, position=)."""
    return _client().call("history_orders_get", *args, **kwargs)


def history_deals_total(*args: Any, **kwargs: Any) -> Any:
    return _client().call("history_deals_total", *args, **kwargs)


def history_deals_get(*args: Any, **kwargs: Any) -> Any:
    """history_deals_get(date_from, date_to, *, group=) | (*, ticket=ORDER ticket) | (*, position=)."""
    return _client().call("history_deals_get", *args, **kwargs)


# -- calculations and trading -----------------------------------------------------------------------------
def order_calc_margin(*args: Any, **kwargs: Any) -> Any:
    """order_calc_margin(action, symbol, volume, price) -> margin in the account currency."""
    return _client().call("order_calc_margin", *args, **kwargs)


def order_calc_profit(*args: Any, **kwargs: Any) -> Any:
    """order_calc_profit(action, symbol, volume, price_open, price_close) -> profit, account currency."""
    return _client().call("order_calc_profit", *args, **kwargs)


def order_check(*args: Any, **kwargs: Any) -> Any:
    """order_check(request) -> OrderCheckResult; success is retcode 0 ("Done")."""
    return _client().call("order_check", *args, **kwargs)


def order_send(*args: Any, **kwargs: Any) -> Any:
    """order_send(request) -> OrderSendResult, or None when refused in the client (last_error says why)."""
    return _client().call("order_send", *args, **kwargs)


# -- the package's undocumented helpers -------------------------------------------------------------------
def Buy(symbol: Any, volume: Any, price: Any = None, *, comment: Any = None, ticket: Any = None) -> Any:
    """Market buy at ``price`` (or the current Ask, retried on requotes); ``ticket`` closes that position."""
    return _helpers.market_order(_client().call, _BUY, symbol, volume, price, comment, ticket)


def Sell(symbol: Any, volume: Any, price: Any = None, *, comment: Any = None, ticket: Any = None) -> Any:
    """Market sell at ``price`` (or the current Bid, retried on requotes); ``ticket`` closes that position."""
    return _helpers.market_order(_client().call, _SELL, symbol, volume, price, comment, ticket)


def Close(symbol: Any, *, comment: Any = None, ticket: Any = None) -> Any:
    """Close every position of ``symbol`` (or only ``ticket``): True, "Partially", False, or None."""
    return _helpers.close_positions(_client().call, symbol, comment, ticket)


_FUNCTION_NAMES = (
    "initialize", "login", "shutdown", "version", "last_error", "account_info", "terminal_info",
    "symbols_total", "symbols_get", "symbol_info", "symbol_info_tick", "symbol_select",
    "market_book_add", "market_book_get", "market_book_release",
    "copy_rates_from", "copy_rates_from_pos", "copy_rates_range", "copy_ticks_from", "copy_ticks_range",
    "orders_total", "orders_get", "positions_total", "positions_get",
    "history_orders_total", "history_orders_get", "history_deals_total", "history_deals_get",
    "order_calc_margin", "order_calc_profit", "order_check", "order_send",
)  # fmt: skip

__all__ = [
    *_FUNCTION_NAMES,
    "Buy",
    "Sell",
    "Close",
    "AccountInfo",
    "BookInfo",
    "OrderCheckResult",
    "OrderSendResult",
    "SymbolInfo",
    "TerminalInfo",
    "Tick",
    "TradeDeal",
    "TradeOrder",
    "TradePosition",
    "TradeRequest",
    "__version__",
    *_CONSTANTS,
]
