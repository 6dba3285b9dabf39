"""The container runtime: each agent in its own podman container, the host's root as a read-only overlay.

No image and no registry: ``podman run --rootfs /:O`` runs the host's own file system as the container's
root, through an overlay whose writes are thrown away, and ``--read-only`` refuses even those. On top of it
the agent sees the same allow-list as in bubblewrap (:func:`.sandbox.agent_mounts`): every top-level
directory but the system ones is an empty tmpfs (so no data dir, master key, /root, /home, /var or other
agents), then the code read-only and its own directory read-write. Its own PID, IPC and hostname namespace,
no capability, no new privileges; the network stays the host's, as in bubblewrap (the bus identity limits
what an agent may say). Podman puts the container in its own cgroups with the agent's CPU and process
limits, inside a group of ours holding its memory limit (:class:`AgentParent`), *below the supervisor's
own group*; the supervisor reads and adjusts them there like its own.

Two settings this host needs (FACTS.md): ``runc`` as the OCI runtime (crun refuses a mixed cgroup v1/v2
host) and ``default_ulimits = []`` in a ``containers.conf`` of ours (root here lacks CAP_SYS_RESOURCE, and
podman's default ulimits need it). The open-file limit is set by ``prlimit`` in the container, for the same
reason. The container runs detached (no podman client stays per agent); the credentials hand-off reaches
the agent's standard input through a pipe podman passes on, and is never in argv, the environment
(``--env NAME`` passes values from podman's own), a file or a log (``--log-driver none``: the output goes
straight to the agent's log file).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import itertools
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from mtrobot.core.errors import ConfigError
from mtrobot.logging import get_logger
from mtrobot.proc import AGENT_LIFELINE_ENV, die_with_parent, proc_status
from mtrobot.settings import Settings

from .base import AgentLaunch, AgentLimits, AgentProcess
from .limits import Hierarchy, LimitPlan, cgroup_mounts, discover, groups_of, sweep_stale
from .podman_groups import CGROUP_PARENT, AgentParent, held_limits, limit_flags
from .podman_process import ContainerProcess, PodmanProcess, close_quietly
from .sandbox import SYSTEM_DIRS, agent_mounts

log = get_logger(__name__)

CONTAINER_PREFIX = "mtrobot-agent-"
DATA_DIR_LABEL = "mtrobot.data_dir"
CONTAINERS_CONF = "[containers]\ndefault_ulimits = []\n"
KERNEL_DIRS = ("proc", "sys", "dev")

PODMAN_ISOLATION = {
    "mount": "private (podman container): system directories and code read-only, own directory "
    "read-write; no data dir, master key or other agents",
    "pid_view": "private (own PID namespace)",
    "privileges": "no capabilities, no new privileges (uid 0 without a user namespace)",
    "network": "host's (the bus identity limits it)",
}


def podman_binaries() -> tuple[Path, Path] | None:
    """``podman`` and ``runc`` on PATH (Debian's packages), or None."""
    podman, runc = shutil.which("podman"), shutil.which("runc")
    return (Path(podman), Path(runc)) if podman and runc else None


def podman_env(conf: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a podman process gets: PATH, our ``containers.conf`` and ``extra`` (the agent's allow-listed
    variables), never the supervisor's whole environment (the master key is in it)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(extra or {}), "CONTAINERS_CONF": str(conf)}


def containers_conf(settings: Settings) -> Path:
    """Our ``containers.conf`` (``CONTAINERS_CONF``), written once into the run dir."""
    path = settings.run_dir / "podman" / "containers.conf"
    if not path.exists() or path.read_text() != CONTAINERS_CONF:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(CONTAINERS_CONF)
    return path


@functools.cache
def podman_works(podman: Path, runc: Path, conf: Path) -> str | None:
    """None if podman can run a container of the host's root here, else why not."""
    argv = [str(podman), "--runtime", str(runc), "run", "--rm", "--network", "host", "--log-driver", "none"]
    try:
        done = subprocess.run(
            [*argv, "--read-only", "--read-only-tmpfs=false", "--rootfs", "/:O", "/bin/true"],
            capture_output=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
            env=podman_env(conf),
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else done.stderr.decode(errors="replace").strip() or "failed"


def hide_the_host() -> list[str]:
    """Every top-level entry of the host's root but the system directories, made empty: a directory by a
    tmpfs (not filled from the host's: podman copies it up unless told not to), a file by /dev/null."""
    args: list[str] = []
    for entry in sorted(Path("/").iterdir()):
        if entry.name in KERNEL_DIRS or str(entry) in SYSTEM_DIRS or entry.is_symlink():
            continue
        if entry.is_dir():
            mode = "1777" if entry.name == "tmp" else "755"
            args += ["--tmpfs", f"{entry}:notmpcopyup,mode={mode}"]
        else:
            args += ["--volume", f"/dev/null:{entry}:ro"]
    return args


def podman_view(settings: Settings, launch: AgentLaunch) -> list[str]:
    """The mount arguments of ``podman run``: what one agent sees, and nothing else."""
    args = hide_the_host()
    for mount in agent_mounts(settings, launch):
        for path in (mount.source, mount.target):
            if ":" in path or "," in path:  # podman's --volume and --tmpfs separators
                raise ConfigError(f"the podman runtime cannot mount a path with ':' or ',' in it: {path!r}")
        if mount.kind == "tmpfs":
            args += ["--tmpfs", f"{mount.target}:notmpcopyup,mode=700"]
        else:
            args += ["--volume", f"{mount.source}:{mount.target}:{mount.kind}"]
    return [*args, "--workdir", str(launch.agent_dir)]


class PodmanRuntime:
    name = "podman"

    def __init__(self, settings: Settings, podman: Path, runc: Path) -> None:
        self.settings = settings
        self.podman = podman
        self.runc = runc
        self.conf = containers_conf(settings)
        self.memory = next((h for h in discover() if "memory" in h.controllers), None)
        self.label = f"{DATA_DIR_LABEL}={hashlib.sha256(str(settings.data_dir).encode()).hexdigest()[:16]}"
        self.pid_dir = settings.run_dir / "podman"  # the real run dir: no agent sees it
        self._calls = asyncio.Semaphore(PODMAN_CALLS)
        self.sweep()

    def _env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return podman_env(self.conf, extra)

    def sweep(self) -> int:
        """Remove this data dir's containers left by a supervisor that was killed (they are not its children
        and outlive it: two agents of one account would both trade), at the start; and on the way out, any
        whose removal failed."""
        base = [str(self.podman), "--runtime", str(self.runc)]
        try:
            listed = subprocess.run(
                [*base, "ps", "-a", "-q", "--filter", f"label={self.label}"],
                capture_output=True, timeout=60, check=False, env=self._env(), stdin=subprocess.DEVNULL,
            )  # fmt: skip
            ids = listed.stdout.decode().split()
            if ids:
                log.warning("removing agent containers left by an earlier supervisor", count=len(ids))
                subprocess.run([*base, "rm", "-f", "-t", "0", *ids], capture_output=True, timeout=60,
                               check=False, env=self._env(), stdin=subprocess.DEVNULL)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("agent containers not swept", error=str(exc))
            return 0
        if self.memory is not None:  # and the agents' groups a killed supervisor left (old and empty only)
            parent = "/" + str((self.memory.own / CGROUP_PARENT).relative_to(self.memory.mount))
            mounts = [
                Hierarchy(1, frozenset(), Path(p), Path(p) / parent.lstrip("/")) for p, _ in cgroup_mounts()
            ]
            sweep_stale(mounts)
        return len(ids)

    async def start(self, launch: AgentLaunch) -> AgentProcess:
        name = f"{CONTAINER_PREFIX}{launch.account}-{uuid.uuid4().hex[:8]}"
        self.pid_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        pidfile = self.pid_dir / f"{name}.pid"
        parent = self._parent(name, launch.limits)
        try:
            pid, lifeline = await self._run(launch, name, pidfile, parent)
        except BaseException:
            await self.remove(name)
            if parent is not None:
                await asyncio.to_thread(parent.remove)
            raise
        groups = groups_of(pid)
        if parent is not None:
            groups.groups["memory"] = parent.group
        files = launch.limits.max_open_files
        isolation = {
            "runtime": "podman (runc)",
            **held_limits(groups, launch.limits, parent is None),
            "files": f"rlimit {files} open files",
            **PODMAN_ISOLATION,
        }
        exit_code = functools.partial(self.exit_code, name, conmon_exit_file(pid))
        inner = ContainerProcess(pid, isolation, exit_code, lifeline)
        plan = LimitPlan(groups, _nothing, isolation)
        return PodmanProcess(inner, plan, pid, name, parent, self.remove)

    async def _run(
        self, launch: AgentLaunch, name: str, pidfile: Path, parent: AgentParent | None
    ) -> tuple[int, int]:
        """Start the container detached (no podman client stays per agent: about 36 MB each, measured
        attached), the hand-off on a pipe that becomes its stdin, its output straight into its log file;
        the agent's host PID once podman has started it, and our end of its stdin (its lifeline)."""
        handoff_read, handoff_write = os.pipe()  # both ends close on exec: only the dups at 3 and 4 pass
        log_fd = _open_log(launch.log_path)
        try:
            client = await asyncio.create_subprocess_exec(
                *self._run_argv(launch, name, pidfile, parent),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                env=self._env(_container_env(launch)), close_fds=False,
                preexec_fn=_as_fds_3_and_4(handoff_read, log_fd),
            )  # fmt: skip
        except BaseException:
            close_quietly(handoff_write)
            raise
        finally:
            os.close(handoff_read)
            os.close(log_fd)
        try:
            _, err = await asyncio.wait_for(client.communicate(), START_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                client.kill()
            close_quietly(handoff_write)
            raise RuntimeError(f"podman did not start the agent within {START_TIMEOUT_S:g} s") from None
        if client.returncode != 0:
            close_quietly(handoff_write)
            raise RuntimeError(f"podman could not start the agent: {err.decode(errors='replace').strip()}")
        # The agent runs and reads its stdin. In a thread: a hand-off larger than the pipe holds waits for
        # it; the write ends once read or once every reader has gone (the container removed, see start).
        # The pipe then stays open: it is the agent's lifeline (AGENT_LIFELINE_ENV), closed by the kernel
        # when this process dies, by ContainerProcess once the agent has.
        try:
            handing = asyncio.to_thread(_write_all, handoff_write, launch.stdin)
            await asyncio.wait_for(handing, START_TIMEOUT_S)
        except BaseException:
            close_quietly(handoff_write)
            raise
        try:
            return int((await asyncio.to_thread(pidfile.read_text)).strip()), handoff_write
        except (OSError, ValueError) as exc:
            close_quietly(handoff_write)
            raise RuntimeError(f"podman started the agent but wrote no PID file ({exc})") from None

    def _run_argv(
        self, launch: AgentLaunch, name: str, pidfile: Path, parent: AgentParent | None
    ) -> tuple[str, ...]:
        argv = [str(self.podman), "--runtime", str(self.runc), "run", "--detach", "--name", name]
        argv += ["--label", self.label, "--log-driver", "none", "--pidfile", str(pidfile)]
        argv += ["--preserve-fds", "2", "--network", "host"]
        argv += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        argv += ["--read-only", "--read-only-tmpfs=false"]
        if parent is not None:
            argv += ["--cgroup-parent", parent.relative]
        argv += limit_flags(launch.limits, memory_by_podman=parent is None)
        for key in _container_env(launch):
            argv += ["--env", key]  # the value comes from podman's own environment, never argv
        argv += [*podman_view(self.settings, launch), "--rootfs", "/:O"]
        files = launch.limits.max_open_files
        return (*argv, *AS_STDIO, "/usr/bin/prlimit", f"--nofile={files}:{files}", "--", *launch.argv)

    async def exit_code(self, name: str, exit_file: Path | None, timeout: float = 15.0) -> int:
        """The agent's exit code as conmon recorded it (128 + N for signal N), once it has (a moment after
        the process has gone): from conmon's exit file, a read, where we know it; else from ``podman
        inspect``, a whole podman process each time (300 agents stopping at once ran 600 of them)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        read_until = loop.time() + EXIT_FILE_WAIT_S  # not there by then: removed, or conmon is very late
        while exit_file is not None and loop.time() < read_until:
            with contextlib.suppress(OSError, ValueError):
                return int((await asyncio.to_thread(exit_file.read_text)).strip())
            await asyncio.sleep(0.02)
        while loop.time() < deadline:
            state = await self._podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name)
            out = state.split()
            if len(out) == 2 and out[0] in ("exited", "stopped") and out[1].lstrip("-").isdigit():
                return int(out[1])
            if not out:
                break  # no such container (removed): nothing recorded
            await asyncio.sleep(0.2)
        log.warning("no exit code recorded for the agent's container", container=name)
        return -signal.SIGKILL

    def _parent(self, name: str, limits: AgentLimits) -> AgentParent | None:
        if self.memory is None:
            return None
        parent = AgentParent(self.memory, name)
        try:
            parent.create(limits.memory_mb)
        except OSError as exc:
            log.warning("agent memory group not created; podman limits it", error=str(exc))
            parent.remove()
            return None
        return parent

    async def remove(self, name: str) -> None:
        await self._podman("rm", "-f", "-t", "0", name)
        with contextlib.suppress(OSError):
            (self.pid_dir / f"{name}.pid").unlink()

    async def _podman(self, *args: str, timeout: float = 60.0) -> str:
        async with self._calls:
            return await self._podman_now(*args, timeout=timeout)

    async def _podman_now(self, *args: str, timeout: float) -> str:
        process = await asyncio.create_subprocess_exec(
            str(self.podman), "--runtime", str(self.runc), *args, env=self._env(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            log.warning("podman did not answer", command=args[0], timeout_s=timeout)
            return ""
        return out.decode(errors="replace")


def _nothing() -> None:
    """No set-up between fork and exec: podman makes the container's groups itself."""


def conmon_exit_file(pid: int) -> Path | None:
    """Where the container's monitor (conmon, the agent's parent) writes its exit code: ``--exit-dir`` and
    the container id ``-c`` of its own command line. None where that is not what its parent is."""
    try:
        with open(f"/proc/{proc_status(pid).get('PPid', '0').strip()}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return None
    if not argv or Path(argv[0]).name != "conmon":
        return None
    options = dict(itertools.pairwise(argv))
    if "--exit-dir" not in options or "-c" not in options:
        return None
    return Path(options["--exit-dir"]) / options["-c"]


PODMAN_CALLS = 4
"""podman processes of ours at once after a start (``rm``, ``inspect``): each costs a few hundred ms of CPU,
and 300 agents stopping together ran about 600 at once (load 226 on 2 cores)."""

EXIT_FILE_WAIT_S = 3.0
"""How long to look for conmon's exit file before asking podman (it is there within milliseconds; a
container removed meanwhile, by a sweep, has none)."""

START_TIMEOUT_S = 120.0
"""How long ``podman run`` may take to start one container (seconds on a loaded host; 20 at once here)."""

AS_STDIO = ("/bin/sh", "-c", 'exec "$@" <&3 >&4 2>&4 3<&- 4<&-', "agent")
"""The container's first program: fd 3 (the hand-off pipe) becomes its stdin, fd 4 (its log file) its output,
then it *is* the agent (``exec``: still PID 1, no shell left behind)."""


def _open_log(path: Path | None) -> int:
    if path is None:
        return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _as_fds_3_and_4(handoff: int, log_file: int) -> Callable[[], None]:
    """Between fork and exec of the podman client: the two descriptors ``--preserve-fds 2`` passes on, at
    3 and 4 (moved above 9 first, so neither lands on the other), and dying with the supervisor."""

    def setup() -> None:
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (handoff, log_file)]
        for target, fd in zip((3, 4), high, strict=True):
            os.dup2(fd, target)  # inheritable: podman gets them, and nothing else of ours
        die_with_parent()

    return setup


def _container_env(launch: AgentLaunch) -> dict[str, str]:
    return {**launch.env, AGENT_LIFELINE_ENV: "stdin"}


def _write_all(fd: int, data: bytes) -> None:
    """The hand-off into the pipe (blocks while the agent has not read what the pipe cannot hold)."""
    with contextlib.suppress(OSError):  # it died at once: its exit code tells the supervisor
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
