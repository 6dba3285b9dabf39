"""Strict JSON for messages from outside: read exactly what was written, or say in words why not.

The standard library's ``json`` accepts things no sender of an order means (``NaN``, a key given twice, the
last one silently winning) and raises on others in ways a service must never let escape (``RecursionError``
on deep nesting, ``ValueError`` on a 5,000-digit integer). :func:`loads` reads a payload with bounds on its
size, depth and numbers and turns every problem into :class:`StrictJSONError`, whose message names the field
when there is one. The messages are plain sentences; no payload value longer than a few characters is ever
repeated in them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

MAX_BYTES = 64 * 1024
"""An order is a few hundred bytes; anything past this is not one."""
MAX_DEPTH = 8
MAX_INT_DIGITS = 64
"""Far more than any 64-bit number (a broker ticket): a longer one is garbage, not a value out of range."""
MAX_FLOAT_CHARS = 40


class StrictJSONError(ValueError):
    """A payload that cannot be read as strict JSON; ``field`` names where, when known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class _Unreadable:
    """Stands in for a value that cannot be accepted, so the error can name the field it sits in."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


class _Duplicate(dict[str, Any]):
    """An object with a key given twice (kept as a marker; its field is named once the parse is done)."""

    key: str = ""


def _int(text: str) -> int | _Unreadable:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        return _Unreadable(f"is a number of {digits} digits, more than the {MAX_INT_DIGITS} accepted")
    return int(text)


def _float(text: str) -> float | _Unreadable:
    if len(text) > MAX_FLOAT_CHARS:
        return _Unreadable(f"is a number written with {len(text)} characters, too long to be read exactly")
    value = float(text)
    if not math.isfinite(value):
        return _Unreadable("is a number too large to be represented")
    return value


def _constant(name: str) -> _Unreadable:
    return _Unreadable(f"is {name}, which is not a number")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            dup = _Duplicate(result)
            dup.key = key
            return dup
        result[key] = value
    return result


def loads(
    data: bytes | bytearray | memoryview | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """Parse ``data`` as strict JSON (see the module docstring); raises :class:`StrictJSONError`."""
    size = len(data)
    if size > max_bytes:
        raise StrictJSONError(f"the payload is {size} bytes, more than the limit of {max_bytes}")
    if isinstance(data, str):
        text = data
    else:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StrictJSONError(f"the payload is not valid UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise StrictJSONError("the payload is empty")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
        )
    except RecursionError:
        raise StrictJSONError(f"the payload is nested more than {max_depth} levels deep") from None
    except json.JSONDecodeError as exc:
        raise StrictJSONError(f"the payload is not JSON ({exc.msg} at character {exc.pos})") from None
    except ValueError as exc:  # anything else json raises on
        raise StrictJSONError(f"the payload is not JSON ({type(exc).__name__})") from None
    _check(value, "", 1, max_depth)
    return value


def _check(value: Any, path: str, depth: int, max_depth: int) -> None:
    """Walk the parsed value (iteratively bounded by ``max_depth``) for the markers the hooks left."""
    if isinstance(value, _Unreadable):
        raise StrictJSONError(f"field '{path or 'payload'}' {value.problem}", path or None)
    if not isinstance(value, dict | list):
        return
    if depth > max_depth:
        raise StrictJSONError(f"the payload is nested more than {max_depth} levels deep", path or None)
    if isinstance(value, _Duplicate):
        field = f"{path}.{value.key}" if path else value.key
        raise StrictJSONError(f"field '{_short(field)}' is given more than once", field)
    items: Mapping[Any, Any] = value if isinstance(value, dict) else dict(enumerate(value))
    for key, item in items.items():
        _check(item, f"{path}.{key}" if path else str(key), depth + 1, max_depth)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def number_text(x: float) -> str:
    """A number as a person writes it: ``0.01``, ``1e-12`` (never "0"), ``1e+308`` (never 309 digits)."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    if 1e-8 <= abs(x) < 1e15:
        text = f"{x:.8f}".rstrip("0").rstrip(".")
        if text not in ("0", "-0") and float(text) == round(x, 8):
            return text
    return f"{x:.6g}"
