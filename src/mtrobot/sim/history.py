"""The history functions of a terminal session: by time range (and group), by ticket, by position.

As in MT5, ``history_deals_get(ticket=...)`` takes the *order* ticket (DEAL_ORDER), and ``position=`` the
position identifier. Orders are selected by their setup time, deals by their time (server clock).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.sim import views
from mtrobot.sim.args import InvalidArgument, arity, kw_int, kw_str, number_arg
from mtrobot.sim.state import Account, Deal, Order

Reply = tuple[Any, tuple[int, str]]
Require = Callable[[], Account]
OK = (mt5.RES_S_OK, "Success")


def _range(args: list[Any]) -> tuple[float, float]:
    return number_arg(args, 0, 0), number_arg(args, 1, 0)


def orders_total(args: list[Any], kwargs: dict[str, Any], require: Require) -> Reply:
    arity(args, kwargs, 2, 2, set())
    start, end = _range(args)
    return sum(1 for o in require().history_orders if start <= o.time_setup_ms / 1000 <= end), OK


def deals_total(args: list[Any], kwargs: dict[str, Any], require: Require) -> Reply:
    arity(args, kwargs, 2, 2, set())
    start, end = _range(args)
    return sum(1 for d in require().deals if start <= d.time_ms / 1000 <= end), OK


def _query(args: list[Any], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    arity(args, kwargs, 2, 0, {"group", "ticket", "position"})
    group, ticket, position = kw_str(kwargs, "group"), kw_int(kwargs, "ticket"), kw_int(kwargs, "position")
    if args:
        if len(args) != 2 or ticket is not None or position is not None:
            raise InvalidArgument("Invalid number of arguments")
        start, end = _range(args)
        return ("range", start, end, group)
    if ticket is not None:
        return ("ticket", ticket)
    if position is not None:
        return ("position", position)
    raise InvalidArgument("Invalid number of arguments")


def orders_get(args: list[Any], kwargs: dict[str, Any], require: Require) -> Reply:
    query = _query(args, kwargs)
    orders: list[Order] = require().history_orders
    if query[0] == "range":
        _, start, end, group = query
        found = [o for o in orders if start <= o.time_setup_ms / 1000 <= end]
        found = [o for o in found if group is None or views.matches_group(o.symbol, group)]
    elif query[0] == "ticket":
        found = [o for o in orders if o.ticket == query[1]]
    else:
        found = [o for o in orders if o.position_id == query[1]]
    return tuple(o.to_struct() for o in found), OK


def deals_get(args: list[Any], kwargs: dict[str, Any], require: Require) -> Reply:
    query = _query(args, kwargs)
    account = require()
    found: list[Deal]
    if query[0] == "range":
        _, start, end, group = query
        found = [d for d in account.deals if start <= d.time_ms / 1000 <= end]
        found = [d for d in found if group is None or views.matches_group(d.symbol, group)]
    elif query[0] == "ticket":  # the ORDER ticket, as in MT5
        found = account.deals_of_order(query[1])
    else:
        found = account.deals_of_position(query[1])
    return tuple(d.to_struct() for d in found), OK
