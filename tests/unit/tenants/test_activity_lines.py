from __future__ import annotations

from mtrobot.core.events import AccountSnapshot, ConnectionState
from mtrobot.web.activity import describe_robot_changes, robot_states


def snap(*robots: dict) -> AccountSnapshot:
    return AccountSnapshot(seq=1, account="a", connection=ConnectionState.CONNECTED, robots=list(robots))


def test_a_robot_that_pauses_and_resumes_gives_one_line_each_with_the_reason() -> None:
    running = robot_states(snap({"name": "ma_cross", "state": "running"}))
    paused = robot_states(snap({"name": "ma_cross", "state": "paused", "reason": "daily loss limit reached"}))
    assert describe_robot_changes(running, paused) == [
        ("robot", "Robot ma_cross paused: daily loss limit reached.")
    ]
    assert describe_robot_changes(paused, running) == [("robot", "Robot ma_cross resumed.")]
    assert describe_robot_changes(running, running) == []


def test_robot_entries_are_read_leniently() -> None:
    states = robot_states(snap({"robot": "grid", "paused": True}, {"state": "running"}))
    assert states == {"grid": ("paused", "")}
