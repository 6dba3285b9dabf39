"""``mtrobot status``'s agents table: one line per protection, saying whether it holds."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from mtrobot.settings import Settings
from mtrobot.supervisor.runtime.sandbox_status import agents_table


def _render(settings: Settings) -> str:
    table = agents_table(settings)
    assert table is not None
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_each_agent_says_what_holds_and_what_does_not(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    settings.ensure_dirs()
    assert agents_table(settings) is None, "no supervisor, no table"
    agents = [
        {"account": "alpha", "state": "running", "pid": 41, "isolation": {
            "runtime": "bubblewrap", "memory": "cgroup v1 256 MiB", "mount": "private (bubblewrap): ...",
            "files": "rlimit 256 open files", "network": "host's (the bus identity limits it)"}},
        {"account": "beta", "state": "held", "pid": None, "isolation": {
            "runtime": "limited process", "memory": "not limited",
            "mount": "shared with the host (not isolated)"}},
    ]  # fmt: skip
    (settings.run_dir / "agents.json").write_text(
        json.dumps({"runtime": "bubblewrap", "pid": 7, "agents": agents})
    )
    text = _render(settings)
    lines = {
        line.split("│")[4].strip(): line.split("│")[5].strip()
        for line in text.splitlines()
        if line.count("│") >= 6
    }
    assert lines["memory: cgroup v1 256 MiB"] == "yes"
    assert lines["mount: private (bubblewrap): ..."] == "yes"
    assert lines["files: rlimit 256 open files"] == "yes"
    assert lines["network: host's (the bus identity limits it)"] == "partly"
    assert lines["memory: not limited"] == "no"
    assert lines["mount: shared with the host (not isolated)"] == "no"
    assert "supervisor pid 7" in text
