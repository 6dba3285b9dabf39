"""The cgroups of an agent's container: podman's for CPU and processes, ours around them for memory.

See :class:`AgentParent` for why the memory limit is ours.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .base import AgentLimits
from .limits import CPU_PERIOD_US, CgroupSet, Hierarchy, cgroup_mounts, limit_memory, remove_groups

CGROUP_PARENT = "mtrobot-containers"
"""The directory below the supervisor's own group that holds every agent's :class:`AgentParent`."""


def limit_flags(limits: AgentLimits, memory_by_podman: bool) -> list[str]:
    cpus = f"{max(1000, int(CPU_PERIOD_US * limits.cpu_share)) / CPU_PERIOD_US:g}"
    flags = ["--cpus", cpus, "--pids-limit", str(limits.max_pids)]
    if memory_by_podman:
        mib = f"{limits.memory_mb}m"
        flags += ["--memory", mib, "--memory-swap", mib]
    return flags


class AgentParent:
    """The agent's own group, made by us *inside the supervisor's own* (so no agent escapes the supervisor's
    limits), holding its memory limit; podman makes the container's groups inside it (``--cgroup-parent``).

    Why the memory limit is ours and not podman's: podman removes the container's groups as soon as it has
    exited, and its own OOM report does not work on this host (``OOMKilled`` stays false after a kill), so
    the kernel's count of OOM kills must live in a group that outlasts the container. The limit of a parent
    holds for everything below it; the CPU and process limits stay podman's (``--cpus``, ``--pids-limit``)."""

    def __init__(self, memory: Hierarchy, name: str) -> None:
        self.memory = memory
        self.group = memory.own / CGROUP_PARENT / name
        self.relative = "/" + str(self.group.relative_to(memory.mount))
        """The ``--cgroup-parent``: podman makes this path in every hierarchy, the container's group below."""
        self._oom_events: int | None = None
        self._oom_kills = 0

    def create(self, memory_mb: int) -> None:
        self.group.mkdir(parents=True, mode=0o755)
        limit_memory(self.group, self.memory.version, memory_mb)
        if self.memory.version == 1:
            self._oom_events = self._watch_oom()

    def _watch_oom(self) -> int:
        """cgroup v1 counts an OOM kill in the victim's group (podman's, gone with it), but notifies every
        listener of the group whose limit was hit, ours: an eventfd registered on ``memory.oom_control``."""
        events = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        control = os.open(self.group / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        try:
            (self.group / "cgroup.event_control").write_text(f"{events} {control}")
        finally:
            os.close(control)  # the kernel holds its own reference once registered
        return events

    def oom_kills(self) -> int:
        """OOM kills under this group so far (v2: ``memory.events``, hierarchical; v1: the eventfd)."""
        if self.memory.version != 1:
            with contextlib.suppress(OSError, ValueError):
                for line in (self.group / "memory.events").read_text().splitlines():
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
            return 0
        if self._oom_events is not None:
            with contextlib.suppress(BlockingIOError, OSError):
                self._oom_kills += os.eventfd_read(self._oom_events)
        return self._oom_kills

    def remove(self) -> None:
        """This group and the same path podman made in the other hierarchies (with conmon's group in
        each: conmon, the container's monitor, runs there too), once the container has gone."""
        if self._oom_events is not None:
            self.oom_kills()  # the last word before the group goes (its removal signals the eventfd too)
            os.close(self._oom_events)
            self._oom_events = None
        mirrors = {Path(point) / self.relative.lstrip("/") for point, _ in cgroup_mounts()}
        remove_groups(mirrors | {self.group})


def held_limits(groups: CgroupSet, limits: AgentLimits, memory_by_podman: bool) -> dict[str, str]:
    """What the agent's groups hold, read back from the kernel: said only where it is true."""
    v = f"podman cgroup v{groups.version}"
    words = {"memory": "not limited", "cpu": "not limited", "pids": "not limited"}
    v1 = ("memory.limit_in_bytes", "cpu.cfs_quota_us", "pids.max")
    memory_file, cpu_file, pids_file = ("memory.max", "cpu.max", "pids.max") if groups.version == 2 else v1
    for key, name, expected, said in (
        ("memory", memory_file, str(limits.memory_mb * 2**20), f"{limits.memory_mb} MiB"),
        ("cpu", cpu_file, "", f"{limits.cpu_share:g} of a core"),
        ("pids", pids_file, str(limits.max_pids), f"{limits.max_pids} processes"),
    ):
        group = groups.groups.get(key)
        with contextlib.suppress(OSError, IndexError):
            value = (group / name).read_text().split()[0] if group is not None else ""
            if value not in ("", "max", "-1") and (not expected or value == expected):
                words[key] = f"{v} {said}"
    if memory_by_podman and words["memory"] != "not limited":
        words["memory"] += " (a kill by it is reported as a crash)"
    return words
