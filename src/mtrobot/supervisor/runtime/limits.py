"""Per-agent resource limits: a cgroup per agent (v2 where the host delegates one, v1 controllers otherwise),
rlimits where no cgroup can be had.

Each agent gets its own cgroup *below the supervisor's own* (never beside it: an agent must not escape the
limits the supervisor itself runs under). The child joins it between fork and exec (``LimitPlan.preexec``), so
everything it ever allocates or starts is counted from its first instruction. The group is removed once
the agent has exited (:meth:`CgroupSet.remove`).

What holds is said in words (:attr:`LimitPlan.isolation`), for ``mtrobot status``: an operator must see
"memory: not limited" rather than assume a limit.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mtrobot.logging import get_logger
from mtrobot.proc import die_with_parent

from .base import AgentLimits

log = get_logger(__name__)

CGROUP_PREFIX = "mtrobot-agent-"
CPU_PERIOD_US = 100_000
CPU_WEIGHT = {1: (1024, 2), 2: (100, 1)}
"""(normal, demoted) CPU weight: v1 ``cpu.shares`` (default 1024, least 2), v2 ``cpu.weight`` (100, least 1).
A demoted agent still runs, but whenever another agent wants a core, that one goes first: the quota caps
how much an agent may use, the weight decides who waits."""
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
"""cpuacct only measures (CPU time used, for quarantine and the density bench); the other three limit."""


@dataclass(frozen=True)
class Hierarchy:
    """Where one controller (v1) or the unified tree (v2) is mounted, and the supervisor's own group in it."""

    version: int
    controllers: frozenset[str]
    mount: Path
    own: Path
    """The supervisor's own cgroup directory: agents' groups are created inside it."""


def _mountinfo() -> Iterable[tuple[str, str, str, str]]:
    """(mount root, mount point, fs type, super options) of each mount of this process."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            parts, rest = left.split(), right.split()
            if len(parts) >= 5 and len(rest) >= 3:
                yield parts[3], parts[4], rest[0], rest[2]


def _own_paths(pid: int | str = "self") -> dict[str, str]:
    """Controller (or ``""`` for v2) -> the cgroup path of ``pid`` (this process), from /proc/PID/cgroup."""
    paths: dict[str, str] = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for ctrl in ctrls.split(",") if ctrls else [""]:
                paths[ctrl] = path
    return paths


def _inside(mount: str, mount_root: str, path: str) -> Path:
    rel = path[len(mount_root) :] if mount_root != "/" and path.startswith(mount_root) else path
    return Path(mount) / rel.lstrip("/")


def discover() -> list[Hierarchy]:
    """The writable cgroup hierarchies this process can create agents' groups in (may be empty)."""
    try:
        own = _own_paths()
        mounts = list(_mountinfo())
    except OSError:
        return []
    found: list[Hierarchy] = []
    for root, point, fstype, opts in mounts:
        if fstype == "cgroup2" and "" in own:
            ctrl_file = Path(point) / "cgroup.controllers"
            with contextlib.suppress(OSError):
                ctrls = frozenset(ctrl_file.read_text().split()) & {"memory", "cpu", "pids"}
                if ctrls:
                    found.append(Hierarchy(2, ctrls, Path(point), _inside(point, root, own[""])))
        elif fstype == "cgroup":
            ctrls = frozenset(o for o in opts.split(",") if o in V1_CONTROLLERS)
            path = next((own[c] for c in ctrls if c in own), None)
            if ctrls and path is not None:
                found.append(Hierarchy(1, ctrls, Path(point), _inside(point, root, path)))
    return [h for h in found if os.access(h.own, os.W_OK)]


def cgroup_mounts() -> list[tuple[str, int]]:
    """(mount point, version) of every cgroup hierarchy this process sees."""
    with contextlib.suppress(OSError):
        return [(p, 2 if t == "cgroup2" else 1) for _, p, t, _ in _mountinfo() if t in ("cgroup", "cgroup2")]
    return []


def groups_of(pid: int) -> CgroupSet:
    """The groups another runtime made for process ``pid`` (a container's), to read and limit like ours:
    each controller this process can see, in the hierarchy it is mounted in."""
    found = CgroupSet()
    try:
        paths = _own_paths(pid)
        mounts = list(_mountinfo())
    except OSError:
        return found
    for root, point, fstype, opts in mounts:
        if fstype == "cgroup2" and "" in paths and not found.groups:
            group = _inside(point, root, paths[""])
            with contextlib.suppress(OSError):
                ctrls = set((Path(point) / "cgroup.controllers").read_text().split())
                if ctrls & {"memory", "cpu", "pids"}:
                    found.version = 2
                    found.groups.update({c: group for c in ctrls & {"memory", "cpu", "pids"}})
        elif fstype == "cgroup" and found.version != 2:
            for ctrl in (o for o in opts.split(",") if o in V1_CONTROLLERS and o in paths):
                found.version = 1
                found.groups[ctrl] = _inside(point, root, paths[ctrl])
    return found


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _read_int(path: Path, key: str | None = None) -> int | None:
    """An integer file, or the value of ``key`` in a flat-keyed file (``memory.events``, ``cpu.stat``)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    if key is None:
        return int(text.split()[0]) if text.strip() and text.split()[0].isdigit() else None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return None


@dataclass
class Usage:
    """What the agent's cgroups counted so far."""

    memory_bytes: int | None = None
    cpu_seconds: float | None = None
    oom_kills: int = 0
    memory_limit_hits: int = 0
    cpu_demand_seconds: float | None = None
    """CPU time its threads ran *or waited for* (runqueue, and throttling by its CPU limit): the CPU it
    wanted. A busy loop wants a whole core however busy the host is; its usage alone shrinks with load."""


def schedstat_seconds(pids: Iterable[int]) -> float | None:
    """Run plus runqueue-wait time of every thread of ``pids`` (``/proc/PID/task/TID/schedstat``)."""
    total, seen = 0, False
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    run, wait, _ = f.read().split()
            except (OSError, ValueError):
                continue
            total, seen = total + int(run) + int(wait), True
    return total / 1e9 if seen else None


@dataclass
class CgroupSet:
    """One agent's groups (one per v1 hierarchy, or one v2 group) and how to read and remove them."""

    groups: dict[str, Path] = field(default_factory=dict)
    """controller -> its group directory for this agent (v2: every controller maps to the one group)."""
    version: int = 0

    @property
    def dirs(self) -> list[Path]:
        return sorted(set(self.groups.values()))

    def usage(self) -> Usage:
        usage = Usage()
        mem = self.groups.get("memory")
        if mem is not None:
            if self.version == 2:
                usage.memory_bytes = _read_int(mem / "memory.current")
                usage.oom_kills = _read_int(mem / "memory.events", "oom_kill") or 0
                usage.memory_limit_hits = _read_int(mem / "memory.events", "max") or 0
            else:
                usage.memory_bytes = _read_int(mem / "memory.usage_in_bytes")
                usage.oom_kills = _read_int(mem / "memory.oom_control", "oom_kill") or 0
                usage.memory_limit_hits = _read_int(mem / "memory.failcnt") or 0
        throttled = 0.0
        if self.version == 2 and "cpu" in self.groups:
            used = _read_int(self.groups["cpu"] / "cpu.stat", "usage_usec")
            usage.cpu_seconds = used / 1e6 if used is not None else None
            throttled = (_read_int(self.groups["cpu"] / "cpu.stat", "throttled_usec") or 0) / 1e6
        else:
            if "cpuacct" in self.groups:
                used = _read_int(self.groups["cpuacct"] / "cpuacct.usage")
                usage.cpu_seconds = used / 1e9 if used is not None else None
            if "cpu" in self.groups:
                throttled = (_read_int(self.groups["cpu"] / "cpu.stat", "throttled_time") or 0) / 1e9
        demand = schedstat_seconds(self.pids())
        usage.cpu_demand_seconds = demand + throttled if demand is not None else None
        return usage

    def pids(self) -> list[int]:
        for group in self.dirs:
            with contextlib.suppress(OSError, ValueError):
                return [int(p) for p in (group / "cgroup.procs").read_text().split()]
        return []

    def set_cpu(self, share: float) -> bool:
        group = self.groups.get("cpu")
        if group is None:
            return False
        quota = max(1000, int(CPU_PERIOD_US * share))
        try:
            if self.version == 2:
                _write(group / "cpu.max", f"{quota} {CPU_PERIOD_US}")
            else:
                _write(group / "cpu.cfs_quota_us", str(quota))
        except OSError:
            return False
        return True

    def set_weight(self, demoted: bool) -> bool:
        """The agent's CPU weight: the least there is (``demoted``) or the default; False where no cgroup."""
        group = self.groups.get("cpu")
        if group is None or self.version not in CPU_WEIGHT:
            return False
        normal, least = CPU_WEIGHT[self.version]
        name = "cpu.weight" if self.version == 2 else "cpu.shares"
        try:
            _write(group / name, str(least if demoted else normal))
        except OSError:
            return False
        return True

    def remove(self, timeout: float = 10.0) -> None:
        """Remove the agent's groups; the agent must have exited (a killed one's tasks leave its group a
        moment after it is reaped, longer on a loaded host)."""
        remove_groups(self.dirs, timeout)


def remove_groups(paths: Iterable[Path], timeout: float = 10.0) -> None:
    """Remove emptied groups and the groups inside them, deepest first, waiting up to ``timeout`` for the
    last tasks to leave."""
    deadline = time.monotonic() + timeout
    every = {Path(root) for top in paths for root, _, _ in os.walk(top)} | set(paths)
    for path in sorted(every, key=lambda p: len(p.parts), reverse=True):
        while True:
            try:
                path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    log.warning("agent cgroup not removed (tasks left in it?)", path=str(path))
                    break
                time.sleep(0.05)


@dataclass(frozen=True)
class LimitPlan:
    """What :class:`AgentLimiter` set up for one agent: its groups, the child-side set-up and the words."""

    cgroups: CgroupSet
    preexec: Callable[[], None]
    isolation: dict[str, str]


class AgentLimiter:
    """Creates each agent's cgroups with its limits, and the rlimits for what no cgroup covers."""

    def __init__(self, hierarchies: list[Hierarchy] | None = None) -> None:
        self.hierarchies = discover() if hierarchies is None else hierarchies
        sweep_stale(self.hierarchies)

    @property
    def description(self) -> str:
        if not self.hierarchies:
            return "rlimits only (no writable cgroup)"
        versions = sorted({h.version for h in self.hierarchies})
        ctrls = sorted(set().union(*(h.controllers for h in self.hierarchies)))
        return f"cgroup v{'+v'.join(map(str, versions))} ({', '.join(ctrls)})"

    def prepare(self, account: str, limits: AgentLimits) -> LimitPlan:
        name = f"{CGROUP_PREFIX}{account}-{uuid.uuid4().hex[:8]}"
        cgroups = CgroupSet()
        words = {
            "memory": "not limited",
            "cpu": "not limited",
            "pids": "not limited",
            "files": f"rlimit {limits.max_open_files} open files",
        }
        for h in self.hierarchies:
            try:
                self._create(h, name, limits, cgroups, words)
            except OSError as exc:
                log.warning("agent cgroup not created", controllers=sorted(h.controllers), error=str(exc))
        rlimits = [(resource.RLIMIT_NOFILE, limits.max_open_files)]
        if "memory" not in cgroups.groups:
            # Without a memory cgroup, the data segment limit (heap and anonymous maps, Linux >= 4.7) is the
            # nearest rlimit to "memory": an allocation past it fails with MemoryError instead of a kill.
            data = (limits.memory_mb + DATA_HEADROOM_MB) * 2**20
            rlimits.append((resource.RLIMIT_DATA, data))
            words["memory"] = f"rlimit data {limits.memory_mb + DATA_HEADROOM_MB} MiB (approximate)"
        if "cpu" not in cgroups.groups:
            words["cpu"] = "not limited (lower priority: nice 10)"
        procs = [g / "cgroup.procs" for g in cgroups.dirs]
        nice = "cpu" not in cgroups.groups
        return LimitPlan(cgroups, _preexec(procs, rlimits, nice), words)

    def _create(
        self, h: Hierarchy, name: str, limits: AgentLimits, cgroups: CgroupSet, words: dict[str, str]
    ) -> None:
        if h.version == 2:
            with contextlib.suppress(OSError):  # already enabled, or refused: the writes below say which
                _write(h.own / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(h.controllers)))
        group = h.own / name
        group.mkdir(mode=0o755)
        cgroups.version = h.version
        for ctrl in h.controllers:
            cgroups.groups[ctrl] = group
        v = f"cgroup v{h.version}"
        if "memory" in h.controllers:
            limit_memory(group, h.version, limits.memory_mb)
            words["memory"] = f"{v} {limits.memory_mb} MiB"
        if "cpu" in h.controllers:
            quota = max(1000, int(CPU_PERIOD_US * limits.cpu_share))
            if h.version == 2:
                _write(group / "cpu.max", f"{quota} {CPU_PERIOD_US}")
            else:
                _write(group / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(group / "cpu.cfs_quota_us", str(quota))
            words["cpu"] = f"{v} {limits.cpu_share:g} of a core"
        if "pids" in h.controllers:
            _write(group / "pids.max", str(limits.max_pids))
            words["pids"] = f"{v} {limits.max_pids} processes"


def limit_memory(group: Path, version: int, memory_mb: int) -> None:
    """Write a memory limit, swap included where the kernel accounts it."""
    mib = str(memory_mb * 2**20)
    if version == 2:
        _write(group / "memory.max", mib)
        with contextlib.suppress(OSError):
            _write(group / "memory.swap.max", "0")
    else:
        _write(group / "memory.limit_in_bytes", mib)
        with contextlib.suppress(OSError):  # only where swap accounting is on
            _write(group / "memory.memsw.limit_in_bytes", mib)


STALE_AFTER_S = 120.0


def sweep_stale(hierarchies: list[Hierarchy], older_than_s: float = STALE_AFTER_S) -> int:
    """Remove agents' groups left empty by a supervisor that was killed (its agents died with it). Only
    old ones: a group made a moment ago by another supervisor may not have its agent in it yet. The kernel
    refuses to remove a group that still has a process, so a live agent's group is never taken."""
    removed = 0
    now = time.time()
    for h in hierarchies:
        with contextlib.suppress(OSError):
            for group in h.own.iterdir():
                if not group.name.startswith(CGROUP_PREFIX):
                    continue
                with contextlib.suppress(OSError):
                    if (
                        now - group.stat().st_mtime > older_than_s
                        and not (group / "cgroup.procs").read_text()
                    ):
                        for inner, _, _ in sorted(os.walk(group), key=lambda w: -len(w[0])):
                            if inner != str(group):  # a container's groups inside ours (conmon's)
                                Path(inner).rmdir()  # refused while a process is in it: then all stays
                        group.rmdir()
                        removed += 1
    return removed


DATA_HEADROOM_MB = 256
"""Address space Python and its libraries reserve without using it (thread stacks, arenas), over the limit."""


def _preexec(procs: list[Path], rlimits: list[tuple[int, int]], nice: bool) -> Callable[[], None]:
    """Runs in the child between fork and exec: join the groups, set the rlimits, die with the parent."""
    targets = [str(p) for p in procs]

    def setup() -> None:
        pid = str(os.getpid()).encode()
        for target in targets:
            fd = os.open(target, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        for which, value in rlimits:
            _soft, hard = resource.getrlimit(which)
            cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (cap, cap))
        if nice:
            os.nice(10)
        die_with_parent()

    return setup
