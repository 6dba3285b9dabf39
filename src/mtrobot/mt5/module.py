""":class:`Mt5Module`: the ``MetaTrader5`` module's face bound to a terminal client of its own.

``import mtrobot.mt5`` gives the one terminal of this process, as the official module does. Where one
process must play several (a test of terminals side by side, or the ``metatrader5`` backend of the
conformance suite driving this module), each ``Mt5Module`` is what another process's module would be: the
same functions, constants and structure types, its own session and ``last_error()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mtrobot.broker import constants as c
from mtrobot.mt5 import helpers
from mtrobot.mt5.client import Mt5Client
from mtrobot.mt5.constants import CONSTANTS
from mtrobot.mt5.results import TYPES

FUNCTIONS: tuple[str, ...] = (
    "initialize", "login", "shutdown", "version", "last_error", "account_info", "terminal_info",
    "symbols_total", "symbols_get", "symbol_info", "symbol_info_tick", "symbol_select",
    "market_book_add", "market_book_get", "market_book_release",
    "copy_rates_from", "copy_rates_from_pos", "copy_rates_range", "copy_ticks_from", "copy_ticks_range",
    "orders_total", "orders_get", "positions_total", "positions_get",
    "history_orders_total", "history_orders_get", "history_deals_total", "history_deals_get",
    "order_calc_margin", "order_calc_profit", "order_check", "order_send",
)  # fmt: skip
"""Every function of the official package (MT5_REFERENCE.md section 1)."""
_OWN = {"initialize", "login", "shutdown", "last_error"}


class Mt5Module:
    __name__ = "MetaTrader5"
    __version__ = "5.0.6231"

    def __init__(self, client: Mt5Client) -> None:
        self.client = client
        for name, value in CONSTANTS.items():
            setattr(self, name, value)
        for name, result_type in TYPES.items():
            setattr(self, name, result_type)
        for name in FUNCTIONS:
            setattr(self, name, getattr(client, name) if name in _OWN else _bound(client, name))

    def Buy(
        self, symbol: Any, volume: Any, price: Any = None, *, comment: Any = None, ticket: Any = None
    ) -> Any:
        return helpers.market_order(
            self.client.call, c.ORDER_TYPE_BUY, symbol, volume, price, comment, ticket
        )

    def Sell(
        self, symbol: Any, volume: Any, price: Any = None, *, comment: Any = None, ticket: Any = None
    ) -> Any:
        return helpers.market_order(
            self.client.call, c.ORDER_TYPE_SELL, symbol, volume, price, comment, ticket
        )

    def Close(self, symbol: Any, *, comment: Any = None, ticket: Any = None) -> Any:
        return helpers.close_positions(self.client.call, symbol, comment, ticket)


def _bound(client: Mt5Client, name: str) -> Callable[..., Any]:
    def function(*args: Any, **kwargs: Any) -> Any:
        return client.call(name, *args, **kwargs)

    function.__name__ = function.__qualname__ = name
    return function
