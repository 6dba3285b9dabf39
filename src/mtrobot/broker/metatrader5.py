"""The ``metatrader5`` backend: the official ``MetaTrader5`` package, in process (Windows only).

The package is imported only when this backend is selected (``pip install 'mtrobot[mt5]'``). It talks to
``terminal64.exe`` on the same machine over a named pipe; one process holds one IPC session, so every
terminal this process opens on the package shares one worker thread (MT5_REFERENCE.md §0, §12.1).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from mtrobot.broker.backends import UnknownBackend
from mtrobot.broker.threaded import ModuleApi, TerminalDefaults, ThreadedTerminal
from mtrobot.broker.worker import worker_for

OFFICIAL_MODULE = "MetaTrader5"


def import_official_module() -> ModuleType:
    """The official package, or a clear error saying how to get it."""
    try:
        return importlib.import_module(OFFICIAL_MODULE)
    except ModuleNotFoundError as exc:
        raise UnknownBackend(
            "MT5 backend 'metatrader5' needs the MetaTrader5 package, which exists for Windows only: "
            "pip install 'mtrobot[mt5]' (on Linux use the 'mt5linux' backend)"
        ) from exc


def open_terminal(
    *,
    path: str | None = None,
    portable: bool = False,
    call_timeout: float = 90.0,
    module: Any = None,
) -> ThreadedTerminal:
    """A terminal on the official package.

    ``path`` is the ``terminal64.exe`` of this account's own install (used when ``initialize()`` gets no
    path); ``portable`` starts it with ``/portable`` so its data stays beside it. ``call_timeout`` bounds
    every call except ``initialize``/``login`` (their own ``timeout`` plus a grace). ``module`` replaces
    the package (tests pass a stand-in).
    """
    if path is not None and not isinstance(path, str):
        raise TypeError("path must be the terminal64.exe path as a string")
    mt5 = module if module is not None else import_official_module()
    return ThreadedTerminal(
        ModuleApi(mt5),
        worker_for(mt5, "mt5-metatrader5"),
        defaults=TerminalDefaults(path=path, portable=portable),
        call_timeout=call_timeout,
        label="metatrader5",
    )
