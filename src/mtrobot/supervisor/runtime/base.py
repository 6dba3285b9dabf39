"""The one small interface between the supervisor and whatever runs an agent (PLAN.md "Runtime").

A runtime turns an :class:`AgentLaunch` (the command, its environment, the secret hand-off for its standard
input, its own directory and its limits) into a running :class:`AgentProcess`. The supervisor knows
nothing else about it, so a sandboxed process, a container or a Kubernetes pod per account is one more
runtime, not a rewrite. ``isolation`` tells the operator, in words, which protections hold for that agent
(``mtrobot status``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class AgentLimits:
    """What one agent may use. A runtime enforces what the host allows and says so in ``isolation``."""

    memory_mb: int = 256
    cpu_share: float = 0.5
    """Fraction of one core."""
    max_pids: int = 64
    max_open_files: int = 256


@dataclass(frozen=True)
class AgentLaunch:
    """Everything needed to start one account's agent.

    ``stdin`` carries the credentials hand-off (a secret): a runtime writes it to the agent's standard input
    and closes it, and never puts it in argv, the environment, a file or a log.
    """

    account: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    stdin: bytes = field(repr=False)
    agent_dir: Path
    limits: AgentLimits = AgentLimits()
    log_path: Path | None = None
    """Where the agent's output goes (appended); ``None``: discarded."""


@runtime_checkable
class AgentProcess(Protocol):
    """A started agent, whatever runs it."""

    pid: int
    isolation: Mapping[str, str]
    """Which protections hold, in words, e.g. ``{"memory": "cgroup v1 256 MiB", "mount": "shared"}``."""

    async def wait(self) -> int:
        """Wait for the agent to end; its exit code (negative: killed by that signal)."""
        ...

    def terminate(self) -> None:
        """Ask the agent to stop cleanly (SIGTERM or the runtime's equivalent); returns at once."""
        ...

    def kill(self) -> None:
        """Stop the agent now (SIGKILL or equivalent); returns at once."""
        ...


class AgentRuntime(Protocol):
    name: str

    async def start(self, launch: AgentLaunch) -> AgentProcess: ...
