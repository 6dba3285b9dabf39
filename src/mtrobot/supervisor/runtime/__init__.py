"""How the supervisor starts an agent: the runtime interface (:mod:`.base`) and its implementations.

:func:`choose_runtime` (:mod:`.choice`) picks the strongest runtime the host supports: a container per
agent (:mod:`.sandbox_podman`), a bubblewrap sandbox or a limited process (:mod:`.sandbox`), or a plain
local process (:mod:`.local`).
"""

from __future__ import annotations

from .base import AgentLaunch, AgentLimits, AgentProcess, AgentRuntime
from .choice import choose_runtime
from .local import LocalRuntime

__all__ = ["AgentLaunch", "AgentLimits", "AgentProcess", "AgentRuntime", "LocalRuntime", "choose_runtime"]
