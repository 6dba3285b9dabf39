"""Small-N smoke runs of ``bench density`` and ``bench storm``: real supervisor, real sandboxed agents, real
simulator; the JSON line has its fields and the run cleans up after itself (no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mtrobot.supervisor.runtime.limits import CGROUP_PREFIX, AgentLimiter
from mtrobot.supervisor.runtime.podman_groups import CGROUP_PARENT
from tests.e2e.proc_tools import mtrobot_command

pytestmark = pytest.mark.slow


def _agent_groups() -> set[str]:
    """The bench agents' groups: ours beside a sandboxed agent, or around a container (podman_groups)."""
    found = set()
    for h in AgentLimiter().hierarchies:
        for where in (h.own, h.own / CGROUP_PARENT):
            if where.is_dir():
                found |= {str(p) for p in where.iterdir() if p.name.startswith(CGROUP_PREFIX + "bench-")}
    return found


def _run(tmp: Path, *args: str, **settings: str) -> dict[str, object]:
    env = {**os.environ, **settings, "TMPDIR": str(tmp)}  # TMPDIR: where the bench makes its data dir
    out = subprocess.run(
        mtrobot_command("bench", *args), capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    assert list(tmp.iterdir()) == [], "the bench left its data dir behind"
    return result


def test_bench_density_small(tmp_path: Path) -> None:
    groups = _agent_groups()
    result = _run(tmp_path, "density", "--agents", "2", "--hold", "2", "--timeout", "200")
    assert result["bench"] == "density" and result["agents"] == 2
    assert result["running"] == 2 and result["healthy_after_hold"] == 2
    assert isinstance(result["agent_rss_p50_mb"], float) and isinstance(result["start_p50_s"], float)
    assert isinstance(result["bare_import_s"], float)
    # The host's count covers the agents wherever they run (a container's agent is not the supervisor's child)
    assert isinstance(result["agent_vmrss_p50_mb"], float)
    assert float(result["host_rss_per_agent_mb"]) >= result["agent_vmrss_p50_mb"]  # type: ignore[arg-type]
    assert _agent_groups() <= groups, "the agents' cgroups are removed"


def test_bench_storm_small(tmp_path: Path) -> None:
    result = _run(tmp_path, "storm", "--agents", "2", "--window", "1", "--timeout", "200",
                  MTROBOT_LOGIN_RATE_PER_S="7", MTROBOT_LOGIN_BURST="3")  # fmt: skip
    assert result["bench"] == "storm" and result["sessions_before"] == 2
    assert (result["configured_logins_per_s"], result["configured_burst"]) == (7.0, 3.0)
    assert result["all_back_after_window_s"] is not None
    # Both sessions came back, so the servers saw at least their two logins (counted by the servers).
    assert sum(result["login_requests"].values()) >= 2
    assert 1 <= max(result["peak_logins_per_s"].values()) <= sum(result["login_requests"].values())
