"""Every broker call goes through :class:`BrokerLink`: a timeout on each, and an AuditRecord for each.

A call that fails returns its ``last_error`` code alongside the result, the way the MetaTrader5 module
reports failures; an exception or a timeout of the backend is turned into the matching RES_* code
(-10002 "answer lost", -10005 "timeout") so the caller has one way to classify every failure.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.broker.terminal import Terminal
from mtrobot.logging import get_logger

from .audit import AuditTrail

log = get_logger(__name__)

LINK_LOST = mt5.RES_E_INTERNAL_FAIL_RECEIVE
LINK_TIMEOUT = mt5.RES_E_INTERNAL_FAIL_TIMEOUT
NOT_CONNECTED = mt5.RES_E_INTERNAL_FAIL_CONNECT


@dataclass(frozen=True, slots=True)
class CallResult:
    value: Any
    error: tuple[int, str] | None = None
    """``(code, description)`` when the call failed (``None`` / ``False`` result, exception, timeout)."""
    latency_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class BrokerLink:
    """Audited, time-limited calls on one :class:`Terminal`. ``terminal`` may be swapped on reconnect."""

    def __init__(self, terminal: Terminal | None, audit: AuditTrail, timeout_s: float = 10.0) -> None:
        self.terminal = terminal
        self.audit = audit
        self.timeout_s = timeout_s
        self.calls = 0
        self.failures = 0
        # A call and the last_error() that explains it must not be torn apart by another coroutine's call on
        # the same terminal: last_error() describes the terminal's *latest* call (as in the MT5 module), so a
        # tick read finishing in between would turn an ambiguous order_send None into "Success".
        self._pair_lock = asyncio.Lock()

    async def call(
        self,
        operation: str,
        *args: Any,
        order_id: str | None = None,
        call_timeout: float | None = None,
        audited: bool = True,
        **kwargs: Any,
    ) -> CallResult:
        """``audited=False`` only for the agent's market-data and display reads (robots' ticks and bars, the
        snapshot polls): several a second per account would bury the trading calls in the audit log."""
        started = time.perf_counter()
        request: dict[str, Any] = {"args": list(args)} if args else {}
        request.update(kwargs)
        value: Any = None
        error: tuple[int, str] | None = None
        terminal = self.terminal
        self.calls += 1
        try:
            if terminal is None:
                raise ConnectionError("no terminal session")
            async with self._pair_lock:
                # asyncio.timeout, not wait_for: the call runs in this task (wait_for made a task of it, one
                # more task and two more loop turns per broker call, five or so per order).
                async with asyncio.timeout(call_timeout or self.timeout_s):
                    value = await getattr(terminal, operation)(*args, **kwargs)
                if value is None or value is False:
                    error = await self._last_error(terminal)
        except TimeoutError:
            error = (
                LINK_TIMEOUT,
                f"{operation} did not answer within {call_timeout or self.timeout_s:.1f} s",
            )
        except Exception as exc:  # any backend failure is a lost answer (ambiguous for a send)
            error = (LINK_LOST if terminal is not None else NOT_CONNECTED, f"{operation}: {exc}")
        latency = (time.perf_counter() - started) * 1000
        if error is not None:
            self.failures += 1
        retcode = getattr(value, "retcode", None)
        if not audited:
            return CallResult(value, error, latency)
        self.audit.record(
            operation,
            order_id=order_id,
            request=request,
            response=value if error is None else {"value": value, "last_error": list(error)},
            retcode=retcode if retcode is not None else (error[0] if error else None),
            latency_ms=latency,
        )
        return CallResult(value, error, latency)

    async def _last_error(self, terminal: Terminal) -> tuple[int, str]:
        try:
            async with asyncio.timeout(self.timeout_s):
                code, text = await terminal.last_error()
            return int(code), str(text)
        except Exception as exc:  # the link died between the call and this question
            return LINK_LOST, f"last_error unavailable: {exc}"
