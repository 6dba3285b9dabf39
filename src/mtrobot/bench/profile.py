"""``--profile``: py-spy samples a platform process during the measured part of a benchmark, then the top
functions by their own time and by time spent under them (from py-spy's collapsed stacks)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_LINE = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """One py-spy recording of ``pid`` between :meth:`start` and :meth:`stop`."""

    def __init__(self, pid: int, out: Path, rate: int = 250) -> None:
        self.pid = pid
        self.out = out
        self.rate = rate
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        binary = py_spy()
        if binary is None:
            raise RuntimeError("py-spy is not installed (pip install py-spy)")
        self._proc = await asyncio.create_subprocess_exec(
            binary, "record", "--pid", str(self.pid), "--format", "raw", "--output", str(self.out),
            "--rate", str(self.rate), "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    async def stop(self) -> list[dict[str, Any]]:
        if self._proc is None:
            return []
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        try:
            await asyncio.wait_for(self._proc.wait(), 30)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()
        return top_functions(self.out.read_text() if self.out.exists() else "")


def _frame(raw: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py)``: one entry per function, not per line."""
    name, _, where = raw.partition(" (")
    where = _LINE.sub(")", "(" + where) if where else ""
    where = where.replace("(", "").replace(")", "")
    return f"{name} ({Path(where).name})" if where else name


def top_functions(collapsed: str, limit: int = 15) -> list[dict[str, Any]]:
    """Functions by samples of their own (``self_pct``) and under them (``total_pct``), busiest first."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    if not samples:
        return []
    return [
        {
            "function": name,
            "self_pct": round(100 * n / samples, 1),
            "total_pct": round(100 * total[name] / samples, 1),
        }
        for name, n in own.most_common(limit)
    ]


def format_top(rows: list[dict[str, Any]], title: str) -> str:
    lines = [f"{title}: top functions by own samples", f"{'self %':>7} {'total %':>8}  function"]
    lines += [f"{r['self_pct']:>7} {r['total_pct']:>8}  {r['function']}" for r in rows]
    return "\n".join(lines)
