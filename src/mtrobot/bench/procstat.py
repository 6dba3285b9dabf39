"""CPU time and resident memory of processes, from ``/proc`` (Linux), for CPU per order and RSS figures."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mtrobot.proc import proc_status

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_mb(pid: int) -> float:
    """The process's resident memory now (``VmRSS``), MiB; 0 once it is gone."""
    return _status_mb(pid, "VmRSS")


def peak_rss_mb(pid: int) -> float:
    """The most resident memory the process ever had (``VmHWM``), MiB; 0 once it is gone."""
    return _status_mb(pid, "VmHWM")


def _status_mb(pid: int | str, field: str) -> float:
    value = proc_status(pid).get(field)  # "12345 kB"
    return int(value.split()[0]) / 1024 if value else 0.0


@dataclass
class CpuMeter:
    """CPU used by each named process between :meth:`start` and :meth:`stop`."""

    pids: Mapping[str, int]

    def __post_init__(self) -> None:
        self._start: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._start["bench-client"] = cpu_seconds(os.getpid())

    def stop(self) -> dict[str, float]:
        now = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        now["bench-client"] = cpu_seconds(os.getpid())
        self.used = {name: now[name] - self._start.get(name, 0.0) for name in now}
        return self.used
