"""Result types that behave like the official package's C types (MT5_REFERENCE.md section 0).

They answer index and attribute access and ``_asdict()`` like a named tuple, with the fields of
:mod:`mtrobot.broker.structures` in the same order, but they are not ``collections.namedtuple`` classes (no
``_make``, no ``_replace``) and they refuse to be pickled: a script that pickles a position to send it to
another process works on no real terminal, so it must not work here either.
"""

from __future__ import annotations

import operator
from typing import Any

from mtrobot.broker import structures


class CResult(tuple):  # type: ignore[type-arg]
    """Base of every result type: a tuple with field names, not picklable."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __new__(cls, *values: Any) -> CResult:
        if len(values) != len(cls._fields):
            raise TypeError(f"{cls.__name__} takes {len(cls._fields)} values, got {len(values)}")
        return super().__new__(cls, values)

    def _asdict(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self, strict=True))
        return f"{type(self).__name__}({inner})"

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(f"cannot pickle '{type(self).__name__}' object")


def _c_type(name: str) -> type[CResult]:
    fields = tuple(structures.STRUCTURES[name]._fields)  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {"__slots__": (), "_fields": fields, "__module__": "MetaTrader5"}
    for index, field in enumerate(fields):
        namespace[field] = property(operator.itemgetter(index))
    return type(name, (CResult,), namespace)


TYPES: dict[str, type[CResult]] = {name: _c_type(name) for name in structures.STRUCTURES}
"""Every result type by its name (``AccountInfo``, ``Tick``, ... ``OrderSendResult``)."""


def as_c_results(value: Any) -> Any:
    """Our structures (alone, nested, or in a tuple) -> the C-like types; anything else unchanged."""
    if isinstance(value, tuple):
        converted = tuple(as_c_results(item) for item in value)
        c_type = TYPES.get(type(value).__name__) if hasattr(value, "_fields") else None
        return c_type(*converted) if c_type is not None else converted
    return value
