"""What the order path remembers about symbols within one terminal session: shown in Market Watch, and
their specification (``symbol_info``).

``symbol_info`` is the largest answer on the path (96 fields) and it describes the contract, not the price:
volume limits and step, digits, stops level, filling and execution modes, trade mode. It is read once per
symbol and kept for :data:`SPEC_TTL_S`, and forgotten when the session changes (a reconnect is a new
terminal), when the broker refuses an order for a reason the specification decides
(:data:`SPEC_RETCODES`: a changed trade mode, volume, stops or filling rule), and before any refusal of
ours: the executor never refuses an order on a remembered specification, it reads it again and checks
again (:meth:`SymbolMemory.forget`). Prices are never remembered: every attempt reads a fresh tick, and
the broker still checks every order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mtrobot.broker import constants as mt5

SPEC_TTL_S = 1.0
"""A broker's change of a symbol's rules (e.g. trade mode to close-only) is seen within this long even
without a refusal in between."""
SPEC_RETCODES = frozenset(
    {
        mt5.TRADE_RETCODE_INVALID_VOLUME,
        mt5.TRADE_RETCODE_INVALID_STOPS,
        mt5.TRADE_RETCODE_TRADE_DISABLED,
        mt5.TRADE_RETCODE_MARKET_CLOSED,
        mt5.TRADE_RETCODE_INVALID_FILL,
        mt5.TRADE_RETCODE_LONG_ONLY,
        mt5.TRADE_RETCODE_SHORT_ONLY,
        mt5.TRADE_RETCODE_CLOSE_ONLY,
    }
)
"""Broker refusals that may mean the remembered specification is out of date."""


class SymbolMemory:
    """Per terminal session: the symbols selected, and each symbol's specification with its read time."""

    def __init__(self, ttl_s: float = SPEC_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._session: object = None
        self._selected: set[str] = set()
        self._specs: dict[str, tuple[float, Any]] = {}

    def _for(self, terminal: object) -> None:
        if terminal is not self._session:  # a new session starts with only its default symbols shown
            self._session, self._selected, self._specs = terminal, set(), {}

    def selected(self, terminal: object, symbol: str) -> bool:
        self._for(terminal)
        return symbol in self._selected

    def mark_selected(self, terminal: object, symbol: str) -> None:
        self._for(terminal)
        self._selected.add(symbol)

    def spec(self, terminal: object, symbol: str) -> Any | None:
        """The remembered ``symbol_info`` of ``symbol`` in this session, if read less than the TTL ago."""
        self._for(terminal)
        found = self._specs.get(symbol)
        if found is None or self._clock() - found[0] >= self.ttl_s:
            return None
        return found[1]

    def remember(self, terminal: object, symbol: str, info: Any) -> None:
        self._for(terminal)
        self._specs[symbol] = (self._clock(), info)

    def forget(self, symbol: str) -> bool:
        """Drop ``symbol``'s specification; True if one was remembered (the caller's answer came from it)."""
        return self._specs.pop(symbol, None) is not None
