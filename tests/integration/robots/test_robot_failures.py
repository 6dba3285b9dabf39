"""A robot that raises, and one that hangs, are paused within one hook timeout; the account's other
robots keep trading and the event loop (the agent's heartbeat) never stalls."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

from mtrobot.core.events import RobotEvent
from mtrobot.robots.api import Bar, Context, Params, Robot
from mtrobot.robots.host import HostOptions

from .rig import allocation, catalogue, host_rig

HOOK_TIMEOUT_S = 0.5
release = threading.Event()
hang_started: list[float] = []


class Raiser(Robot[Params]):
    """Raises on its third bar."""

    name = "raiser"
    description = "Test robot: raises on the third bar."

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.bars = 0

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.bars += 1
        if self.bars == 3:
            raise ZeroDivisionError("division by zero")
        if not ctx.positions:
            ctx.buy()


class Spinner(Robot[Params]):
    """On its third bar spins on the CPU (holding the GIL as much as Python lets it) until released."""

    name = "spinner"
    description = "Test robot: hangs in a busy loop on the third bar."

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.bars = 0

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.bars += 1
        if self.bars == 3:
            hang_started.append(time.monotonic())
            while not release.is_set():
                pass


class Sleeper(Robot[Params]):
    """On its third bar blocks on a lock that is never given (until the test ends)."""

    name = "sleeper"
    description = "Test robot: blocks on the third bar."

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.bars = 0

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.bars += 1
        if self.bars == 3:
            release.wait()


async def test_a_raising_and_two_hanging_robots_are_paused_while_the_other_robot_keeps_trading() -> None:
    release.clear()
    hang_started.clear()
    paused_at: dict[str, float] = {}

    def note(event: RobotEvent) -> None:
        if event.kind == "paused":
            paused_at.setdefault(event.robot.split()[0], time.monotonic())

    bids = [1.1 + 0.0001 * (i % 7) for i in range(12)]
    rig = await host_rig(
        bids,
        [allocation("flipper"), allocation("raiser"), allocation("spinner"), allocation("sleeper")],
        cat=catalogue(Raiser, Spinner, Sleeper),
        options=HostOptions(poll_interval_s=None, hook_timeout_s=HOOK_TIMEOUT_S),
        observer=note,
    )
    beats: list[float] = []

    async def heartbeat() -> None:
        while True:
            beats.append(time.monotonic())
            await asyncio.sleep(0.02)

    beating = asyncio.create_task(heartbeat())
    try:
        await rig.run(3)  # bars 1 and 2 close; the third close makes the three misbehave
        flips_before = sum(1 for r in rig.submitted if r.robot == "flipper")
        await rig.run()
    finally:
        beating.cancel()
        release.set()
    states = {s["robot"]: s for s in rig.host.robots()}
    assert states["raiser"]["state"] == "paused"
    assert "on_bar hook raised ZeroDivisionError: division by zero" in states["raiser"]["reason"]
    for robot in ("spinner", "sleeper"):
        assert states[robot]["state"] == "paused"
        assert f"did not return within {HOOK_TIMEOUT_S:g} s" in states[robot]["reason"]
    assert hang_started and paused_at["spinner"] - hang_started[0] < HOOK_TIMEOUT_S * 2
    assert states["flipper"]["state"] == "running"
    flips = [r for r in rig.submitted if r.robot == "flipper"]
    assert len(flips) > flips_before + 10  # it kept closing and reversing on every later bar
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    # A loop that waited on a hook would stall for the hook timeout; shorter gaps are a busy machine's
    # scheduling (the spinner's thread competes for the GIL), not a wait.
    assert max(gaps) < HOOK_TIMEOUT_S, f"the event loop stalled for {max(gaps):.3f} s"
    lines = [e.message for e in rig.events if e.kind == "paused"]
    assert (
        "Robot raiser EURUSD H1 paused: its on_bar hook raised ZeroDivisionError: division by zero." in lines
    )
    await rig.close()
