"""Result types that behave like the C types of the official ``MetaTrader5`` module (MT5_REFERENCE.md §0).

They answer index and attribute access and ``_asdict()`` like a named tuple, but they are not
``collections.namedtuple`` classes (no ``_make``/``_replace``) and they refuse to be pickled, exactly the
property that breaks naive RPC bridges (mt5linux issue #57). Field names and order come from
``mtrobot.broker.structures``; a different order can be asked for, to play a bridge that reorders fields.
"""

from __future__ import annotations

import operator
import typing
from collections.abc import Sequence
from typing import Any

from mtrobot.broker import structures


class CResult(tuple):  # type: ignore[type-arg]
    """Base of every C-like result: a tuple with field names, not picklable."""

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

    def __reduce_ex__(self, protocol: object) -> Any:
        raise TypeError(f"cannot pickle '{type(self).__name__}' object")


def c_type(name: str, fields: Sequence[str] | None = None) -> type[CResult]:
    """A C-like result type named like the MT5 structure ``name`` (its own field order unless given)."""
    names = tuple(fields if fields is not None else structures.STRUCTURES[name]._fields)  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {"__slots__": (), "_fields": names, "__module__": "MetaTrader5"}
    for index, field in enumerate(names):
        namespace[field] = property(operator.itemgetter(index))
    return type(name, (CResult,), namespace)


def build(cls: type[CResult], values: dict[str, Any]) -> CResult:
    """An instance of ``cls`` from field values by name (every field must be given)."""
    return cls(*(values[field] for field in cls._fields))


def defaults(name: str) -> dict[str, Any]:
    """Zero values for every field of ``name`` by declared type (None for a nested structure)."""
    zero = {"int": 0, "float": 0.0, "bool": False, "str": ""}
    hints = typing.get_type_hints(structures.STRUCTURES[name])
    return {field: zero.get(hint.__name__) for field, hint in hints.items()}
