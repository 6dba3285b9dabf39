"""How the supervisor starts an agent: the runtime interface (:mod:`.base`) and its implementations.

:func:`choose_runtime` picks the strongest runtime the host supports. The sandboxed runtimes live in
``sandbox*.py``; when ``sandbox.py`` provides ``choose_runtime(settings)``, it decides, else agents run as
plain local processes (:mod:`.local`).
"""

from __future__ import annotations

import importlib
from typing import cast

from mtrobot.settings import Settings

from .base import AgentLaunch, AgentLimits, AgentProcess, AgentRuntime
from .local import LocalRuntime

__all__ = ["AgentLaunch", "AgentLimits", "AgentProcess", "AgentRuntime", "LocalRuntime", "choose_runtime"]


def choose_runtime(settings: Settings) -> AgentRuntime:
    try:
        sandbox = importlib.import_module("mtrobot.supervisor.runtime.sandbox")
    except ModuleNotFoundError as exc:
        if exc.name != "mtrobot.supervisor.runtime.sandbox":
            raise
        return LocalRuntime()
    chooser = getattr(sandbox, "choose_runtime", None)
    if chooser is None:
        return LocalRuntime()
    return cast(AgentRuntime, chooser(settings))
