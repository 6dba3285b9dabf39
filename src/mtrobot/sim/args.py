"""Argument checks of the Python binding, done by the server so that no client can slip anything past them.

The real module refuses a bad argument before anything reaches the terminal: the call returns None (False
for bool functions) and ``last_error()`` is ``(-2, 'Invalid "<field>" argument')`` (MT5_REFERENCE.md
section 1). These checks are at least as strict as the real module's, so a call that passes here also
passes there: request floats must be floats (an int volume is refused), unsigned fields non-negative, the
comment short printable ASCII.
"""

from __future__ import annotations

import math
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import TradeRequest

MAX_COMMENT = 27
"""Longest comment the binding accepts here: reports put the real limit between 27 and 31 (section 6.8)."""

_U32 = 2**32 - 1
_U64 = 2**64 - 1
_INT_FIELDS: dict[str, int] = {
    "action": _U32,
    "magic": _U64,
    "order": _U64,
    "deviation": _U64,
    "type": _U32,
    "type_filling": _U32,
    "type_time": _U32,
    "expiration": 2**63 - 1,
    "position": _U64,
    "position_by": _U64,
}
_FLOAT_FIELDS = ("volume", "price", "stoplimit", "sl", "tp")
_STR_FIELDS = ("symbol", "comment")
REQUEST_FIELDS = frozenset(TradeRequest._fields)
_ORDINALS = ("1st", "2nd", "3rd", "4th", "5th", "6th")

TIMEFRAMES = frozenset(v for k, v in vars(mt5).items() if k.startswith("TIMEFRAME_") and isinstance(v, int))


class InvalidArgument(Exception):
    """(-2, text): the call is refused by the binding, nothing was sent."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def invalid_field(name: str) -> InvalidArgument:
    return InvalidArgument(f'Invalid "{name}" argument')


def invalid_positional(index: int) -> InvalidArgument:
    return InvalidArgument(f"Invalid {_ORDINALS[min(index, len(_ORDINALS) - 1)]} unnamed argument")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def arity(
    args: list[Any], kwargs: dict[str, Any], positional: int, required: int, keywords: set[str]
) -> None:
    if not required <= len(args) <= positional:
        raise InvalidArgument(
            "Invalid number of arguments" if positional else "Unnamed arguments not allowed"
        )
    for key in kwargs:
        if key not in keywords:
            raise invalid_field(str(key))


def int_arg(args: list[Any], index: int, low: int = -(2**63), high: int = 2**63 - 1) -> int:
    value = args[index]
    if not is_int(value) or not low <= value <= high:
        raise invalid_positional(index)
    return int(value)


def number_arg(args: list[Any], index: int, low: float = -math.inf) -> float:
    value = args[index]
    if not is_number(value) or value < low:
        raise invalid_positional(index)
    return float(value)


def str_arg(args: list[Any], index: int, max_len: int = 256) -> str:
    value = args[index]
    if not isinstance(value, str) or len(value) > max_len:
        raise invalid_positional(index)
    return value


def kw_int(kwargs: dict[str, Any], name: str, low: int = 0, high: int = _U64) -> int | None:
    value = kwargs.get(name)
    if value is None:
        return None
    if not is_int(value) or not low <= value <= high:
        raise invalid_field(name)
    return int(value)


def kw_str(kwargs: dict[str, Any], name: str, max_len: int = 256) -> str | None:
    value = kwargs.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise invalid_field(name)
    return value


def comment_ok(text: str) -> bool:
    return len(text) <= MAX_COMMENT and all(" " <= ch <= "~" for ch in text)


SAFE_COMMENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-")


def comment_safe(text: str) -> bool:
    """The reference's safe rule (section 6.8): letters, digits, space, ``_`` and ``-``; some builds refuse
    brackets and punctuation such as ``[ ] ( ) : = ,``."""
    return all(ch in SAFE_COMMENT_CHARS for ch in text)


def parse_request(request: Any) -> TradeRequest:
    """The request dict -> the echoed TradeRequest (every key present); the error names the field."""
    if not isinstance(request, dict):
        raise invalid_positional(0)
    for key in request:
        if key not in REQUEST_FIELDS:
            raise invalid_field(str(key))
    if "action" not in request:
        raise invalid_field("action")
    values: dict[str, Any] = {}
    for name, high in _INT_FIELDS.items():
        value = request.get(name, 0)
        if not is_int(value) or not 0 <= value <= high:
            raise invalid_field(name)
        values[name] = int(value)
    for name in _FLOAT_FIELDS:
        value = request.get(name, 0.0)
        if not isinstance(value, float) or not math.isfinite(value):
            raise invalid_field(name)
        values[name] = value
    for name in _STR_FIELDS:
        value = request.get(name, "")
        if not isinstance(value, str) or len(value) > 64:
            raise invalid_field(name)
        values[name] = value
    if not comment_ok(values["comment"]):
        raise invalid_field("comment")
    return TradeRequest(**values)
