"""The simulator dressed as the official ``MetaTrader5`` module: blocking functions, module constants.

With it, the ``metatrader5`` backend (in process) and the ``mt5linux`` backend (inside a bridge server
process) can run the whole conformance suite: every call goes through the real backend code (worker thread,
result copying, rpyc link) and is answered by the simulator's terminal, which runs on an event loop in
another thread. Each calling thread gets its own simulator session, as each process (or each bridge
connection) gets its own IPC session with a real terminal.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from mtrobot.broker import constants
from mtrobot.broker.terminal import TERMINAL_FUNCTIONS, Terminal

CALL_LIMIT_S = 120.0


class SimModule:
    """Blocking, module-shaped access to simulator terminals made by ``make_terminal``, driven on ``loop``
    (a loop running in another thread; without one, the module runs its own loop thread)."""

    def __init__(self, make_terminal: Callable[[], Terminal], loop: asyncio.AbstractEventLoop | None = None):
        self.__name__ = "MetaTrader5"
        for name in dir(constants):
            if name.isupper():
                setattr(self, name, getattr(constants, name))
        self._make_terminal = make_terminal
        self._loop = loop if loop is not None else _loop_in_thread()
        self._sessions = threading.local()

    def _terminal(self) -> Terminal:
        terminal = getattr(self._sessions, "terminal", None)
        if terminal is None:
            terminal = self._sessions.terminal = self._make_terminal()
        return terminal

    def __getattr__(self, name: str) -> Any:
        if name not in TERMINAL_FUNCTIONS:
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            coroutine = getattr(self._terminal(), name)(*args, **kwargs)
            return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CALL_LIMIT_S)

        return call


def _loop_in_thread() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="sim-module-loop", daemon=True).start()
    return loop
