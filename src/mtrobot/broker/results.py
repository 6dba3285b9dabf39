"""Copy what a real MT5 API returns into our own values, and shape arguments the way it wants them.

The official module returns C types (named-tuple-like, not picklable) and numpy arrays; a bridge returns
whatever it decoded. Everything is copied here, by field *name*, into :mod:`mtrobot.broker.structures` and
arrays of the documented dtypes, so callers never hold a C object or a remote proxy, and a result whose fields
come in another order (mt5linux's own types reorder TradeOrder and add a TradePosition field) still lands in
the right place. Fields the API adds in a later build are ignored; a missing field is an error.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mtrobot.broker import structures as s
from mtrobot.broker.terminal import DateLike

if TYPE_CHECKING:
    import numpy as np

Converter = Callable[[Any], Any]

BOOL_FUNCTIONS = frozenset({"initialize", "login", "symbol_select"})
INT_FUNCTIONS = frozenset(
    {"symbols_total", "orders_total", "positions_total", "history_orders_total", "history_deals_total"}
)


class MalformedResult(ValueError):
    """A result did not have the shape of the MT5 structure it should be."""


def fields_of(value: Any) -> Mapping[str, Any]:
    """The fields of a named-tuple-like result (``_asdict()``) or of a mapping."""
    if isinstance(value, Mapping):
        return value
    as_dict = getattr(value, "_asdict", None)
    if as_dict is None:
        raise MalformedResult(f"expected an MT5 structure, got {type(value).__name__}")
    return typing.cast(Mapping[str, Any], as_dict())


_STRUCTS = frozenset(s.STRUCTURES.values())
_NESTED: dict[type, dict[str, type]] = {
    cls: {
        name: hint
        for name, hint in typing.get_type_hints(cls).items()
        if isinstance(hint, type) and hint in _STRUCTS
    }
    for cls in _STRUCTS
}
"""For each structure, its fields that are structures themselves (the ``request`` echo in trade results)."""


def to_structure(cls: type[Any], value: Any) -> Any:
    """A new ``cls`` with each field copied by name from ``value``."""
    data = fields_of(value)
    missing = [name for name in cls._fields if name not in data]
    if missing:
        raise MalformedResult(f"{cls.__name__} result lacks {', '.join(missing)}")
    nested = _NESTED.get(cls, {})
    return cls(
        **{
            name: to_structure(nested[name], data[name]) if name in nested else data[name]
            for name in cls._fields
        }
    )


def to_array(dtype: np.dtype[Any], value: Any) -> np.ndarray[Any, Any]:
    """A new array of ``dtype`` with each column copied by name from a structured array."""
    import numpy as np  # here, not at the top: a session that never asks for bars does not load numpy

    source = np.asarray(value)
    if source.size == 0:  # an empty answer may come without the record dtype
        return np.zeros(0, dtype=dtype)
    names = source.dtype.names or ()
    missing = [name for name in dtype.names or () if name not in names]
    if missing:
        raise MalformedResult(f"array lacks the columns {', '.join(missing)}")
    out = np.zeros(source.shape[0] if source.ndim else 0, dtype=dtype)
    for name in dtype.names or ():
        out[name] = source[name]
    return out


def array_of(kind: str, value: Any) -> np.ndarray[Any, Any]:
    """:func:`to_array` with the dtype of ``kind`` (``rates`` or ``ticks``), looked up only when called."""
    from mtrobot.broker.arrays import DTYPES

    return to_array(DTYPES[kind], value)


def _many(cls: type[Any]) -> Converter:
    return lambda value: tuple(to_structure(cls, item) for item in value)


def _one(cls: type[Any]) -> Converter:
    return lambda value: to_structure(cls, value)


def _version(value: Any) -> tuple[int, int, str]:
    terminal, build, date = tuple(value)
    return int(terminal), int(build), str(date)


CONVERTERS: dict[str, Converter] = {
    "initialize": bool,
    "login": bool,
    "symbol_select": bool,
    "shutdown": lambda _value: None,
    "version": _version,
    "account_info": _one(s.AccountInfo),
    "terminal_info": _one(s.TerminalInfo),
    "symbols_total": int,
    "symbols_get": _many(s.SymbolInfo),
    "symbol_info": _one(s.SymbolInfo),
    "symbol_info_tick": _one(s.Tick),
    "orders_total": int,
    "orders_get": _many(s.TradeOrder),
    "positions_total": int,
    "positions_get": _many(s.TradePosition),
    "history_orders_total": int,
    "history_orders_get": _many(s.TradeOrder),
    "history_deals_total": int,
    "history_deals_get": _many(s.TradeDeal),
    "order_calc_margin": float,
    "order_calc_profit": float,
    "order_check": _one(s.OrderCheckResult),
    "order_send": _one(s.OrderSendResult),
    "copy_rates_from": functools.partial(array_of, "rates"),
    "copy_rates_from_pos": functools.partial(array_of, "rates"),
    "copy_rates_range": functools.partial(array_of, "rates"),
    "copy_ticks_from": functools.partial(array_of, "ticks"),
    "copy_ticks_range": functools.partial(array_of, "ticks"),
}
"""How the result of each interface function is copied into our values."""


def failure_value(function: str) -> Any:
    """What a failed call returns: ``False`` for the bool functions, ``0`` for counts, else ``None``."""
    if function in BOOL_FUNCTIONS:
        return False
    if function in INT_FUNCTIONS:
        return 0
    return None


def is_failure(function: str, result: Any) -> bool:
    """The module signals failure with ``None`` (``False`` for bool functions); ``shutdown`` never fails."""
    return function != "shutdown" and (result is None or result is False)


def needs_last_error(function: str, result: Any) -> bool:
    """Whether ``last_error()`` must be read after this result: always after a failure, and after a count
    of 0, because how the module reports a failed ``*_total`` is undocumented (MT5_REFERENCE.md §1: treat
    0 with suspicion and check ``last_error()``)."""
    return is_failure(function, result) or (function in INT_FUNCTIONS and result == 0)


def error_pair(raw: Any) -> tuple[int, str]:
    """``last_error()`` as ``(int, str)``, whatever sequence type it came in."""
    try:
        code, description = raw
        return int(code), str(description)
    except (TypeError, ValueError):
        return -1, f"Terminal: unreadable last_error {raw!r}"


def epoch_seconds(value: DateLike) -> int:
    """Epoch seconds of a ``DateLike`` (a naive datetime is local time, as the real module reads it)."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a datetime or epoch seconds, got {type(value).__name__}")
    return int(value)
