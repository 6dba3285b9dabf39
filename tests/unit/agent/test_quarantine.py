"""The supervisor's quarantine decisions, on a hand-driven clock (the real-process tests are in
tests/integration/agent/test_noisy_neighbours.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mtrobot.settings import Settings
from mtrobot.supervisor.quarantine import Quarantine, QuarantinePolicy
from mtrobot.supervisor.runtime import AgentLimits
from mtrobot.supervisor.runtime.limits import Usage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Proc:
    isolation: dict[str, str] = field(default_factory=lambda: {"memory": "cgroup v1 256 MiB"})
    cpu_seconds: float | None = 0.0

    def usage(self) -> Usage:
        return Usage(cpu_demand_seconds=self.cpu_seconds)


@dataclass
class WeightedProc(Proc):
    """A process whose CPU weight can be cut, recording each change."""

    weights: list[bool] = field(default_factory=list)

    def demote_cpu(self, demoted: bool) -> bool:
        self.weights.append(demoted)
        return True


@dataclass
class Msg:
    subject: str
    data: bytes


def _q(tmp_path: Path, clock: Clock, **policy: float) -> Quarantine:
    return Quarantine(
        Settings(data_dir=tmp_path),
        AgentLimits(),
        QuarantinePolicy(**policy),
        clock=clock,  # type: ignore[arg-type]
    )


async def _beat(q: Quarantine, account: str, **fields: float) -> None:
    beat = {"account": account, "state": "running", "cpu_pct": 1.0, "orders_per_min": 0.0, "rss_mb": 50.0}
    await q._on_heartbeat(Msg(f"agent.heartbeat.{account}", json.dumps(beat | fields).encode()))


async def test_a_quiet_agent_is_left_alone_and_a_silent_one_is_quarantined_and_killed(tmp_path) -> None:
    clock, proc = Clock(), Proc()
    q = _q(tmp_path, clock)
    q.started("quiet")
    q.started("hung")
    for _ in range(12):
        clock.now += 5
        proc.cpu_seconds = (proc.cpu_seconds or 0) + 0.05
        await _beat(q, "quiet")
        if clock.now < 1020:
            await _beat(q, "hung")
        verdicts = q.check({"quiet": proc, "hung": Proc()})
        if verdicts:
            break
    assert [v.account for v in verdicts] == ["hung"]
    assert verdicts[0].kill and "stopped answering" in verdicts[0].reason


async def test_no_heartbeat_at_all_after_the_start_grace(tmp_path) -> None:
    clock = Clock()
    q = _q(tmp_path, clock, start_grace_s=30)
    q.started("mute")
    clock.now += 29
    assert q.check({"mute": Proc()}) == []
    clock.now += 2
    assert q.check({"mute": Proc()})[0].kill


async def test_a_busy_loop_measured_by_what_its_threads_wanted(tmp_path) -> None:
    clock, hog, idle = Clock(), Proc(), Proc()
    q = _q(tmp_path, clock, cpu_window_s=30)
    q.started("hog")
    q.started("idle")
    verdicts = []
    for _ in range(40):
        clock.now += 1
        hog.cpu_seconds = (hog.cpu_seconds or 0) + 0.95  # ran or waited to run all the time
        idle.cpu_seconds = (idle.cpu_seconds or 0) + 0.3  # busy, but it sleeps
        await _beat(q, "hog")
        await _beat(q, "idle")
        verdicts = q.check({"hog": hog, "idle": idle})
        if verdicts:
            break
    assert clock.now - 1000 >= 30, "never before a whole window"
    assert [v.account for v in verdicts] == ["hog"]
    assert "busy loop" in verdicts[0].reason and not verdicts[0].kill


async def test_a_busy_agent_loses_its_cpu_weight_within_seconds_and_gets_it_back_when_it_calms(
    tmp_path,
) -> None:
    clock, hog, idle = Clock(), WeightedProc(), WeightedProc()
    q = _q(tmp_path, clock, cpu_window_s=30, demote_window_s=2)
    q.started("hog")
    q.started("idle")
    for second in range(1, 11):
        clock.now += 1
        hog.cpu_seconds = (hog.cpu_seconds or 0) + (0.95 if second <= 5 else 0.1)  # busy 5 s, then calm
        idle.cpu_seconds = (idle.cpu_seconds or 0) + 0.3
        await _beat(q, "hog")
        await _beat(q, "idle")
        assert q.check({"hog": hog, "idle": idle}) == []  # far from a quarantine's whole window
        if second == 3:
            assert hog.weights == [True], "demoted once two seconds of busy loop were seen"
    assert hog.weights == [True, False]
    assert idle.weights == []


async def test_a_starting_agent_busy_with_its_imports_is_neither_demoted_nor_judged(tmp_path) -> None:
    clock, starting = Clock(), WeightedProc()
    q = _q(tmp_path, clock, cpu_window_s=2, demote_window_s=2)
    q.started("new")
    for _ in range(4):  # no heartbeat yet: still starting
        clock.now += 1
        starting.cpu_seconds = (starting.cpu_seconds or 0) + 1.0
        assert q.check({"new": starting}) == []
    assert starting.weights == []


async def test_an_agent_started_in_quarantine_has_the_least_cpu_weight_from_the_start(tmp_path) -> None:
    clock = Clock()
    q = _q(tmp_path, clock)
    q.reasons["leak"] = "it used more than its memory limit"
    first, fresh = WeightedProc(), WeightedProc()
    q.started("leak", first)
    q.started("fresh", fresh)
    assert first.weights == [True] and fresh.weights == []


async def test_a_busy_loop_from_heartbeats_where_no_cgroup_counts(tmp_path) -> None:
    clock = Clock()
    q = _q(tmp_path, clock, cpu_window_s=30)
    q.started("hog")
    proc = Proc(cpu_seconds=None)
    verdicts = []
    for i in range(14):
        clock.now += 5
        await _beat(q, "hog", cpu_pct=49.0 if i != 3 else 10.0)  # one pause in the first window
        verdicts = q.check({"hog": proc})
        if verdicts:
            break
    assert verdicts and clock.now - 1000 > 35


async def test_an_order_flood_seen_on_the_bus_before_the_agent_gets_through_it(tmp_path) -> None:
    clock = Clock()
    q = _q(tmp_path, clock, max_orders_per_min=10)
    q.started("flood")
    q.started("calm")
    for i in range(11):
        clock.now += 1
        await q._on_order(Msg("orders.submitted.flood.EURUSD", b"{}"))
        if i % 5 == 0:
            await q._on_order(Msg("orders.submitted.calm.EURUSD", b"{}"))
    (verdict,) = q.check({"flood": Proc(), "calm": Proc()})
    assert verdict.account == "flood" and "order flood" in verdict.reason
    clock.now += 61
    assert q.orders_per_min("flood") == 0


async def test_an_order_flood_rings_the_alarm_as_soon_as_it_passes_the_limit(tmp_path) -> None:
    clock, rings = Clock(), []
    q = _q(tmp_path, clock, max_orders_per_min=10)
    q.alarm = lambda: rings.append(clock.now)
    q.started("flood")
    for _ in range(10):
        clock.now += 1
        await q._on_order(Msg("orders.submitted.flood.EURUSD", b"{}"))
    assert rings == []  # at the limit, not over it
    await q._on_order(Msg("orders.submitted.flood.EURUSD", b"{}"))
    assert rings == [clock.now]
    q.reasons["flood"] = "more than 10 orders in one minute (an order flood)"
    await q._on_order(Msg("orders.submitted.flood.EURUSD", b"{}"))
    assert rings == [clock.now], "once quarantined, no more alarms"


async def test_an_order_flood(tmp_path) -> None:
    clock = Clock()
    q = _q(tmp_path, clock, max_orders_per_min=600)
    q.started("flood")
    clock.now += 5
    await _beat(q, "flood", orders_per_min=600)
    assert q.check({"flood": Proc()}) == []
    await _beat(q, "flood", orders_per_min=1200)
    (verdict,) = q.check({"flood": Proc()})
    assert verdict.reason == "more than 600 orders in one minute (an order flood)"


async def test_memory_over_the_limit_without_a_cgroup(tmp_path) -> None:
    clock = Clock()
    q = _q(tmp_path, clock)
    q.started("fat")
    clock.now += 5
    await _beat(q, "fat", rss_mb=300)
    assert q.check({"fat": Proc()}) == [], "with a memory cgroup, the kernel is the judge"
    (verdict,) = q.check({"fat": Proc(isolation={"memory": "rlimit data 512 MiB (approximate)"})})
    assert verdict.kill and "300 MiB" in verdict.reason


def test_restart_loops_and_deaths_in_quarantine_are_held(tmp_path) -> None:
    clock = Clock()
    q = _q(tmp_path, clock, max_crashes=3, crash_window_s=60)
    assert q.exited("loop", 1, None) == (None, False)
    clock.now += 10
    assert q.exited("loop", 1, None) == (None, False)
    clock.now += 10
    reason, hold = q.exited("loop", 1, None)
    assert hold and reason == "it crashed 3 times in 1 minutes (last exit code 1)"
    # spread over more than the window, crashes are not a loop
    for _ in range(5):
        clock.now += 61
        assert q.exited("flaky", 1, None) == (None, False)
    # a memory breach quarantines; the agent is started once more in quarantine, and held if it dies again
    breach = "it used more than its memory limit (256 MiB) and the system stopped it"
    assert q.exited("leaky", 137, breach) == (breach, False)
    q.reasons["leaky"] = breach
    assert q.exited("leaky", 137, breach) == (None, True)
    # a person resumed it: the database says active, and the history starts over
    q.known("leaky", "active", "")
    assert "leaky" not in q.reasons
    assert q.exited("leaky", 1, None) == (None, False)


async def test_a_database_read_older_than_the_quarantine_does_not_lift_it(tmp_path) -> None:
    from mtrobot.supervisor.handoff import AgentRecord

    clock = Clock()
    q = _q(tmp_path, clock)
    (tmp_path / "mtrobot.db").touch()
    read_at = clock.now  # a round read the database here...
    clock.now += 1
    q.reasons["x"], q._imposed_at["x"] = "a reason", clock.now  # ...then the quarantine was imposed
    assert q.known("x", "active", "", read_at) is False and "x" in q.reasons
    record = AgentRecord("x", 1, "S", "sim", "active", "", None)
    assert q.overlay(record).agent_state == "quarantined" and q.overlay(record).agent_reason == "a reason"
    clock.now += 1
    q.held.add("x")
    assert q.known("x", "active", "", clock.now) is True, "a later read: a person resumed it"
    assert q.overlay(record) is record
