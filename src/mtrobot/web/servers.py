"""The broker servers a trader may pick: the running simulator's, plus the real ones the operator allows.

The simulator announces itself in ``DATA_DIR/run/simbroker.json`` (``host``, ``port``, ``servers``); the
file is re-read on every lookup so a simulator started after the web is seen at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mtrobot.settings import Settings
from mtrobot.web.config import ServerInfo


def simbroker_file(settings: Settings) -> Path:
    return settings.simbroker_file


def sim_servers(settings: Settings) -> list[ServerInfo]:
    path = simbroker_file(settings)
    try:
        document: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return []
    host, port = document.get("host", "127.0.0.1"), document.get("port")
    if not isinstance(port, int):
        return []
    found: list[ServerInfo] = []
    for entry in document.get("servers", []):
        name = entry if isinstance(entry, str) else entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            continue
        company = entry.get("company", "") if isinstance(entry, dict) else ""
        found.append(ServerInfo(name, "sim", str(company or ""), (("host", str(host)), ("port", port))))
    return found


def known_servers(settings: Settings, extra: tuple[ServerInfo, ...] = ()) -> dict[str, ServerInfo]:
    """Every server a trader may connect to, by name (the simulator's first)."""
    servers = {s.name: s for s in extra}
    servers.update({s.name: s for s in sim_servers(settings)})
    return servers
