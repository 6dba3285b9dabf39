"""``bench density`` and ``bench storm`` (DESIGN.md 6): how many agents one host runs, and how they come back
after a maintenance window, measured on a real fleet (:mod:`.fleet`) in the runtime the host chooses.

density: N idle agents (no robots) started by the supervisor; each agent's start time (its process seen,
until it answers ``status`` as running), how many have healthy heartbeats after holding ``hold_s``, the
resident memory of each agent (its heartbeat's VmRSS; VmRSS and peak VmHWM of its own process read from
/proc; and the host's count of every process the fleet costs, sandbox or container monitor included), and
the CPU the idle fleet uses. The bare cost it stands on, measured in the same run: starting this Python
with the agent's imports.

storm: N agents connected; a maintenance window on every simulated server drops every session and refuses
logins for ``window_s``; then the time until every session is back and the most login requests each server
received within any one second of its own clock from the window's start (refused ones too, as a broker's
own limit counts them), beside the host-wide login rate the agents are configured to keep to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from mtrobot.bench.fleet import Fleet, agent_fleet
from mtrobot.bench.procstat import peak_rss_mb, rss_mb
from mtrobot.bus import subjects
from mtrobot.proc import proc_status

Progress = Callable[[str, int, int], None]
"""(what, done, total): the caller draws the bar."""

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _descendants(*roots: int) -> list[int]:
    """Every descendant of ``roots``, from one read of /proc (one read per root made 300 agents' scan take
    long enough to starve the bench's own heartbeat subscriber)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    found, frontier = [], list(roots)
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.append(child)
            frontier.append(child)
    return found


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / _TICK


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/statm") as f:
            total += int(f.read().split()[1])
    return total * _PAGE / 2**20


BARE_CODE = """\
import mtrobot.agent.entry
mtrobot.agent.entry.skip_rich()
import mtrobot.agent.service
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0]))
"""
"""What the agent's entry imports before it reads its hand-off; then its resident memory, now and at peak."""


def bare_python() -> dict[str, float]:
    """The yardstick: a fresh interpreter importing what an agent imports, its start time and its RSS."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", BARE_CODE], capture_output=True, text=True, timeout=120, check=True
    )
    rss_kb, hwm_kb = (int(v) for v in out.stdout.split())
    return {
        "bare_import_s": round(time.perf_counter() - t0, 3),
        "bare_import_rss_mb": round(rss_kb / 1024, 1),
        "bare_import_peak_rss_mb": round(hwm_kb / 1024, 1),
    }


def _agent_memory(fleet: Fleet) -> dict[str, float | None]:
    """Each agent's own process (its host pid in ``agents.json``, not its sandbox): VmRSS now, VmHWM."""
    pids = [a.get("pid") for a in fleet.agents_file().get("agents", []) if isinstance(a, dict)]
    found = [(rss_mb(p), peak_rss_mb(p)) for p in pids if isinstance(p, int)]
    found = [(rss, peak) for rss, peak in found if rss > 0]

    def p50(values: list[float]) -> float | None:
        return round(statistics.median(values), 1) if values else None

    return {
        "agent_vmrss_p50_mb": p50([rss for rss, _ in found]),
        "agent_vmrss_max_mb": round(max(rss for rss, _ in found), 1) if found else None,
        "agent_vmhwm_p50_mb": p50([peak for _, peak in found]),
    }


async def _status(fleet: Fleet, account: str) -> str | None:
    try:
        reply = await fleet.nc.request(subjects.agent_control(account), b'{"cmd":"status"}', timeout=1.0)
        return str(json.loads(reply.data).get("state"))
    except Exception:
        return None


def _agents_started(fleet: Fleet) -> set[str]:
    """The accounts whose agent the supervisor has started: a descendant of it (the agent, its sandbox or
    the podman client starting its container) from /proc, or an agent ``agents.json`` lists with its PID
    (a container's agent is not the supervisor's descendant, and its podman client lives a moment only)."""
    assert fleet.supervisor is not None
    found = {str(a["account"]) for a in _listed(fleet) if isinstance(a.get("pid"), int)}
    for pid in _descendants(fleet.supervisor.pid):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if b"--account" in argv and argv.index(b"--account") + 1 < len(argv):
                found.add(argv[argv.index(b"--account") + 1].decode())
    return found


def _listed(fleet: Fleet) -> list[dict[str, Any]]:
    return [a for a in fleet.agents_file().get("agents") or [] if isinstance(a, dict) and "account" in a]


def _fleet_pids(fleet: Fleet) -> list[int]:
    """Every process the fleet's agents cost the host: the supervisor's descendants, and each agent wherever
    it runs with what it starts and, for a container, its monitor (conmon, the agent's parent there)."""
    assert fleet.supervisor is not None
    agents = [a["pid"] for a in _listed(fleet) if isinstance(a.get("pid"), int)]
    parents = [int(proc_status(a).get("PPid", "0")) for a in agents]
    monitors = [p for p in parents if p > 1 and proc_status(p).get("Name") == "conmon"]
    return sorted({*_descendants(fleet.supervisor.pid, *agents), *agents, *monitors})


async def _start_all(fleet: Fleet, deadline: float, progress: Progress) -> dict[str, float]:
    """Start the supervisor; per agent, seconds from its process appearing to answering ``running``."""
    seen: dict[str, float] = {}
    running: dict[str, float] = {}
    total = len(fleet.accounts)
    await fleet.start_supervisor()
    assert fleet.supervisor is not None
    while len(running) < total and time.monotonic() < deadline:
        if fleet.supervisor.returncode is not None:
            raise RuntimeError(f"the supervisor exited with code {fleet.supervisor.returncode}")
        now = time.monotonic()
        for account in _agents_started(fleet) & set(fleet.accounts):
            seen.setdefault(account, now)
        waiting = [a for a in seen if a not in running]
        states = await asyncio.gather(*(_status(fleet, a) for a in waiting))
        for account, state in zip(waiting, states, strict=True):
            if state == "running":
                running[account] = time.monotonic() - seen[account]
        progress("agents running", len(running), total)
        await asyncio.sleep(0.2)
    return running


async def measure_density(count: int, hold_s: float, timeout_s: float, progress: Progress) -> dict[str, Any]:
    bare = await asyncio.to_thread(bare_python)
    started = time.monotonic()
    async with agent_fleet(count) as fleet:
        starts = await _start_all(fleet, started + timeout_s, progress)
        all_up_s = time.monotonic() - fleet.started_at
        pids = _fleet_pids(fleet)
        cpu0, t0 = _cpu_seconds(pids), time.monotonic()
        end = min(t0 + hold_s, started + timeout_s + hold_s)
        while time.monotonic() < end:
            progress("holding", int(time.monotonic() - t0), int(hold_s))
            await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        healthy = [a for a in fleet.accounts if fleet.healthy(a)]  # before the scan below takes its time
        pids = _fleet_pids(fleet)
        cpu_pct = 100 * (_cpu_seconds(pids) - cpu0) / (time.monotonic() - t0)
        rss = [float(b.body.get("rss_mb") or 0) for a in healthy if (b := fleet.last(a)) is not None]
        start_times = sorted(starts.values())
        return {
            "bench": "density",
            "agents": count,
            "runtime": str(fleet.agents_file().get("runtime", "?")),
            "running": len(starts),
            "healthy_after_hold": len(healthy),
            "hold_s": round(time.monotonic() - t0, 1),
            "all_running_s": round(all_up_s, 1) if len(starts) == count else None,
            "start_p50_s": round(statistics.median(start_times), 2) if start_times else None,
            "start_max_s": round(start_times[-1], 2) if start_times else None,
            "agent_rss_p50_mb": round(statistics.median(rss), 1) if rss else None,
            "agent_rss_max_mb": round(max(rss), 1) if rss else None,
            **_agent_memory(fleet),
            "host_rss_per_agent_mb": round(_rss_mb(pids) / max(1, len(starts)), 1),
            "idle_cpu_pct_of_a_core_total": round(cpu_pct, 1),
            "idle_cpu_pct_per_agent": round(cpu_pct / max(1, len(starts)), 2),
            **bare,
        }


async def _sessions(fleet: Fleet) -> dict[str, int]:
    info = await fleet.admin.info()
    return {str(s["name"]): int(s["sessions"]) for s in info["servers"]}


async def measure_storm(count: int, window_s: float, timeout_s: float, progress: Progress) -> dict[str, Any]:
    started = time.monotonic()
    async with agent_fleet(count) as fleet:
        starts = await _start_all(fleet, started + timeout_s, progress)
        if len(starts) < count:
            raise TimeoutError(f"only {len(starts)} of {count} agents ran within {timeout_s:.0f} s")
        wanted = {s: sum(1 for v in fleet.accounts.values() if v == s) for s in fleet.servers}
        deadline = time.monotonic() + timeout_s
        while any(n < wanted[s] for s, n in (await _sessions(fleet)).items() if s in wanted):
            if time.monotonic() > deadline:
                raise TimeoutError("the agents' broker sessions did not all open")
            await asyncio.sleep(0.2)
        baseline = await _sessions(fleet)
        since = {s: await fleet.admin.server_time(server=s) for s in baseline}
        for server in fleet.servers:
            await fleet.admin.start_maintenance(server=server, seconds=window_s)
        window_end = time.monotonic() + window_s
        back_at: float | None = None
        while time.monotonic() < window_end + timeout_s:
            now, sessions = time.monotonic(), await _sessions(fleet)
            back = sum(min(sessions.get(s, 0), baseline.get(s, 0)) for s in baseline)
            progress("sessions back", back, sum(baseline.values()))
            if now > window_end and all(sessions.get(s, 0) >= baseline[s] for s in baseline):
                back_at = now
                break
            await asyncio.sleep(0.1)
        logins = {s: await fleet.admin.login_times(server=s, since_ms=since[s]) for s in baseline}
        return {
            "bench": "storm",
            "agents": count,
            "runtime": str(fleet.agents_file().get("runtime", "?")),
            "window_s": window_s,
            "sessions_before": sum(baseline.values()),
            "all_back_after_window_s": round(back_at - window_end, 1) if back_at is not None else None,
            "login_requests": {s: len(times) for s, times in logins.items()},
            "peak_logins_per_s": {s: _peak_in_any_second(times) for s, times in logins.items()},
            "configured_logins_per_s": fleet.settings.login_rate_per_s,
            "configured_burst": fleet.settings.login_burst,
        }


def _peak_in_any_second(times_ms: list[int]) -> int:
    """The most login requests within any one second [t, t + 1000 ms) of a server's own clock."""
    peak, first = 0, 0
    for last, t in enumerate(times_ms):
        while t - times_ms[first] >= 1000:
            first += 1
        peak = max(peak, last - first + 1)
    return peak
