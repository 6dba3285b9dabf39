"""``mtrobot status``: each agent's isolation, as the supervisor wrote it (``DATA_DIR/run/agents.json``).

One line per protection per agent, saying what holds and what does not ("memory: cgroup v1 256 MiB",
"mount: shared with the host (not isolated)"), so an operator never has to assume a limit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from mtrobot.settings import Settings

AGENTS_FILE = "agents.json"
ISOLATION_ORDER = ("runtime", "memory", "cpu", "pids", "files", "mount", "pid_view", "privileges", "network")
NOT_HELD = ("not limited", "not isolated", "not dropped", "not started", "shared with the host")
PARTLY = ("approximate", "host's", "nice")


def holds(value: str) -> str:
    """``yes``, ``partly`` or ``no``, from the runtime's own words (see ``isolation`` of each runtime)."""
    if any(w in value for w in NOT_HELD):
        return "no"
    return "partly" if any(w in value for w in PARTLY) else "yes"


def read_agents(settings: Settings) -> dict[str, Any] | None:
    path = Path(settings.run_dir) / AGENTS_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def agents_table(settings: Settings) -> Table | None:
    """The agents and their isolation; None when no supervisor has written its status."""
    data = read_agents(settings)
    if data is None:
        return None
    table = Table(title=f"agents (supervisor pid {data.get('pid', '?')}, runtime {data.get('runtime', '?')})")
    for column in ("account", "state", "pid", "isolation", "holds"):
        table.add_column(column)
    for agent in data.get("agents") or []:
        isolation = agent.get("isolation") or {}
        keys = [k for k in ISOLATION_ORDER if k in isolation] + sorted(set(isolation) - set(ISOLATION_ORDER))
        first = True
        for key in keys or ["runtime"]:
            value = str(isolation.get(key, "not started"))
            row = [str(agent.get("account", "?")), str(agent.get("state", "?")), str(agent.get("pid") or "-")]
            table.add_row(*(row if first else ["", "", ""]), f"{key}: {value}", holds(value))
            first = False
    return table
