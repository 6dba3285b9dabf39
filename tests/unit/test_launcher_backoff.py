"""The launcher's restart backoff doubles while a part keeps crashing and starts over after a stable run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mtrobot import launcher as launcher_module
from mtrobot.launcher import RESTART_BACKOFF_CAP_S, Launcher, Part, RunningPart, UpOptions, next_restart
from mtrobot.settings import Settings


def test_the_delay_doubles_to_the_cap_and_resets_after_a_stable_run() -> None:
    restarts, delays = 0, []
    for _ in range(8):
        restarts, delay = next_restart(restarts, ran_for_s=0.5)
        delays.append(delay)
    assert delays[:5] == [1.0, 2.0, 4.0, 8.0, 16.0] and delays[-1] == RESTART_BACKOFF_CAP_S
    restarts, delay = next_restart(restarts, ran_for_s=3600.0)
    assert (restarts, delay) == (1, 1.0)


class FakeProcess:
    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.returncode: int | None = None

    async def wait(self) -> int:
        await asyncio.sleep(self.lifetime)
        self.returncode = 1
        return 1


async def test_the_watcher_resets_the_backoff_of_a_part_that_ran_stably(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lifetimes = iter([0.0, 0.0, 0.0, 0.3, 0.0, 60.0])  # crash, crash, crash, stable a while, crash, stay
    seen: list[int] = []

    def quick(restarts: int, ran_for_s: float, stable_after_s: float) -> tuple[int, float]:
        count, _delay = next_restart(restarts, ran_for_s, stable_after_s)
        seen.append(count)
        return count, 0.01

    monkeypatch.setattr(launcher_module, "next_restart", quick)
    launcher = Launcher(Settings(data_dir=tmp_path), UpOptions())
    launcher.stable_after_s = 0.2

    async def spawn(_part: Part, _url: str) -> Any:
        return FakeProcess(next(lifetimes))

    monkeypatch.setattr(launcher, "_spawn", spawn)
    rp = RunningPart(Part("x"), FakeProcess(0.0))  # type: ignore[arg-type]
    watcher = asyncio.create_task(launcher._watch(rp, "nats://x"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(seen) < 5 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    launcher._stopping.set()
    watcher.cancel()
    assert seen[:5] == [1, 2, 3, 4, 1], seen  # the fifth restart followed a stable run: back to the start
