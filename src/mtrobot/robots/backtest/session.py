"""The backtest's terminal: a simulator session called in process, without the wire encoding.

The session is the same code a TCP or in-process terminal talks to (``mtrobot.sim.session``), so the
backtest gets the simulator's MT5 semantics exactly (checks, retcodes, netting or hedging, stops levels,
commissions, swaps); only the encoding of each call is skipped, which makes a bar cost microseconds.
"""

from __future__ import annotations

from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.robots.market import CallOutcome, Outcome
from mtrobot.sim.session import Session, safe_call


class SessionCalls:
    """:class:`~mtrobot.robots.market.TerminalCalls` over a simulator :class:`Session`."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.last_error: tuple[int, str] = (mt5.RES_S_OK, "Success")

    async def call(self, operation: str, *args: Any, **kwargs: Any) -> CallOutcome:
        value, error = safe_call(self.session, operation, list(args), kwargs)
        self.last_error = (int(error[0]), str(error[1]))
        ok = error[0] == mt5.RES_S_OK and value is not None and value is not False
        return Outcome(value, ok)
