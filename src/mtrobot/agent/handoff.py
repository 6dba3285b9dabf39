"""The agent's side of the hand-off: one JSON line on standard input (PLAN.md "Agent hand-off").

``{"handoff": {"record", "data_key"}, "login", "server", "backend", "bus": {"creds", "inbox_prefix"},
"portfolio": {...} | null, "control": {"state", "reason"} | null}``. The record is opened here, bound to this
account's id (:func:`mtrobot.connector.credentials.open_handoff`); nothing of it is ever logged.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from mtrobot.connector.credentials import Credentials, open_handoff
from mtrobot.core.errors import ConfigError

MAX_LINE = 1024 * 1024


@dataclass(frozen=True)
class AgentHandoff:
    credentials: Credentials = field(repr=False)
    backend: str = "sim"
    bus_creds: str | None = None
    inbox_prefix: str | None = None
    portfolio: dict[str, Any] | None = None
    control_state: str | None = None
    """The trading gate's state as the database records it (``running``, ``paused``, ``quarantined``); with
    ``None`` (an agent started by hand) the gate keeps what it saved in the agent's directory."""
    control_reason: str = ""

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`mtrobot.bus.connect.connect`: the agent's own bus identity, if any."""
        options: dict[str, Any] = {}
        if self.bus_creds is not None:
            options["creds"] = self.bus_creds
        if self.inbox_prefix is not None:
            options["inbox_prefix"] = self.inbox_prefix
        return options


def _optional(message: dict[str, Any], name: str, kind: type, where: str = "") -> Any:
    value = message.get(name)
    if value is not None and not isinstance(value, kind):
        raise ConfigError(f"the agent hand-off field '{where}{name}' must be a {kind.__name__} or null")
    return value


def parse_handoff(account: str, line: bytes) -> AgentHandoff:
    try:
        message = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError("the agent hand-off on stdin must be one JSON object on one line") from None
    if not isinstance(message, dict) or not isinstance(message.get("handoff"), dict):
        raise ConfigError(
            "the agent hand-off needs an object field 'handoff' (the sealed record and its key)"
        )
    credentials = open_handoff(account, message)
    bus = _optional(message, "bus", dict) or {}
    control = _optional(message, "control", dict) or {}
    state = _optional(control, "state", str, "control.")
    if state not in (None, "running", "paused", "quarantined"):
        raise ConfigError(
            "the agent hand-off field 'control.state' must be 'running', 'paused', 'quarantined' or null"
        )
    return AgentHandoff(
        credentials=credentials,
        backend=_optional(message, "backend", str) or "sim",
        bus_creds=_optional(bus, "creds", str, "bus."),
        inbox_prefix=_optional(bus, "inbox_prefix", str, "bus."),
        portfolio=_optional(message, "portfolio", dict),
        control_state=state,
        control_reason=_optional(control, "reason", str, "control.") or "",
    )


def read_handoff(account: str, stream: BinaryIO | None = None) -> AgentHandoff:
    """Read the hand-off line from ``stream`` (standard input by default), then close it."""
    source = stream or sys.stdin.buffer
    line = source.readline(MAX_LINE)
    if not line.strip():
        raise ConfigError("no agent hand-off on stdin: `mtrobot agent` is started by `mtrobot supervisor`")
    return parse_handoff(account, line)
