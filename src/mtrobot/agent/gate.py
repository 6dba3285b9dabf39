"""The trading gate in front of new opens (PLAN.md "Trading gate").

The connector asks ``gate()`` before it executes an ``open``: ``None`` lets it trade, a string is the
plain-language reason it may not ("paused by the trader", "quarantined: ..."), and the order is refused
with that reason. Closes, modifications and flatten are never asked. The state is kept in the agent's own
directory, so a pause survives a crash and restart of the agent; only a person's ``resume`` opens it again.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from mtrobot.core.agent import AgentState
from mtrobot.files import write_atomically
from mtrobot.logging import get_logger

log = get_logger(__name__)


class TradingGate:
    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self.state = AgentState.RUNNING
        self.reason = ""
        self._load()

    def __call__(self) -> str | None:
        if self.state is AgentState.PAUSED:
            return self.reason or "paused by the trader"
        if self.state is AgentState.QUARANTINED:
            return f"quarantined: {self.reason}" if self.reason else "quarantined"
        return None

    @property
    def open(self) -> bool:
        return self() is None

    def pause(self, reason: str = "paused by the trader") -> None:
        if self.state is not AgentState.QUARANTINED:  # a pause never hides a quarantine's reason
            self._set(AgentState.PAUSED, reason)

    def quarantine(self, reason: str) -> None:
        self._set(AgentState.QUARANTINED, reason)

    def resume(self) -> None:
        self._set(AgentState.RUNNING, "")

    def _set(self, state: AgentState, reason: str) -> None:
        self.state, self.reason = state, reason
        log.info("trading gate", state=state.value, reason=reason)
        if self._path is None:
            return
        write_atomically(self._path, json.dumps({"state": state.value, "reason": reason}))

    def _load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        with contextlib.suppress(ValueError, KeyError, TypeError, OSError):
            data = json.loads(self._path.read_text())
            state = AgentState(data["state"])
            if state in (AgentState.PAUSED, AgentState.QUARANTINED):
                self.state, self.reason = state, str(data.get("reason") or "")
