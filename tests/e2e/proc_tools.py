"""Process helpers for tests that run ``mtrobot`` as a real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mtrobot.bus.server import free_port


def mtrobot_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mtrobot", *args]


def descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid``, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def agent_pids(data_dir: Path) -> list[int]:
    """The agents' host PIDs as the supervisor wrote them (``DIR/run/agents.json``): an agent need not be a
    descendant of ``mtrobot up`` (a container's parent is podman's conmon)."""
    try:
        agents = json.loads((data_dir / "run" / "agents.json").read_text()).get("agents") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [a["pid"] for a in agents if isinstance(a, dict) and isinstance(a.get("pid"), int)]


def sweep_containers(data_dir: Path) -> None:
    """Remove the agent containers a killed ``mtrobot up`` left for this data dir (as its next start does)."""
    from mtrobot.settings import Settings
    from mtrobot.supervisor.runtime.sandbox_podman import PodmanRuntime, podman_binaries

    found = podman_binaries()
    if found is not None:
        PodmanRuntime(Settings(data_dir=data_dir), *found).sweep()


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen | None = None
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} while waiting for {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


_STARTED: list[subprocess.Popen[bytes]] = []


def start_up(data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``mtrobot up`` in its own session; ``stop_leftovers`` ends it if the test did not (a failed wait)."""
    log = open(data_dir.parent / "up.log", "wb")  # noqa: SIM115
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MTROBOT_")}
    full_env.update(env or {})
    proc = subprocess.Popen(
        mtrobot_command("up", "--data-dir", str(data_dir), "--port", str(free_port()), *extra),
        stdout=log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True,
    )  # fmt: skip
    _STARTED.append(proc)
    return proc


def kept_running(proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    """Exempt ``proc`` from ``stop_leftovers`` after each test: an ``up`` a module's tests share, which its
    fixture stops."""
    if proc in _STARTED:
        _STARTED.remove(proc)
    return proc


def stop_leftovers() -> None:
    """SIGTERM each ``mtrobot up`` a test left running (it stops its children); SIGKILL after 30 s."""
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is not None:
            continue
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
