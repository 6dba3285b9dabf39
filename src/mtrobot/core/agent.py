"""What an agent says and is told on the bus (DESIGN.md 3.2, PLAN.md "Control"): its heartbeat on
``agent.heartbeat.{account}`` and the control request/reply on ``agent.control.{account}``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mtrobot.core.events import Record, utc_now
from mtrobot.core.ids import AccountId

HEARTBEAT_INTERVAL_S = 5.0

# How long each layer waits for the one below it to stop, written once so the layers agree. An agent
# shares AGENT_STOP_S between its parts and the bus drain; the supervisor waits SUPERVISOR_AGENT_GRACE_S
# before SIGKILL; the launcher waits LAUNCHER_SUPERVISOR_GRACE_S for the supervisor, which covers the
# supervisor's own grace, so a clean stop never kills the supervisor while its agents (and their cgroups)
# are still being stopped.
AGENT_STOP_S = 12.0
SUPERVISOR_AGENT_GRACE_S = AGENT_STOP_S + 3.0
LAUNCHER_SUPERVISOR_GRACE_S = SUPERVISOR_AGENT_GRACE_S + 5.0


class AgentState(StrEnum):
    """The agent's trading state. ``paused`` and ``quarantined`` close the trading gate: no new opens,
    while closes and flatten still go through."""

    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    QUARANTINED = "quarantined"
    STOPPING = "stopping"


ControlCmd = Literal["pause", "resume", "flatten", "reload", "stop", "quarantine", "status"]
TRADER_COMMANDS: tuple[str, ...] = ("pause", "resume", "flatten")
"""What a trader may send through the web's kill switch (``POST /api/v1/accounts/{id}/control``)."""


class ControlRequest(BaseModel):
    """``{"cmd": ...}``; ``reason`` in plain language (shown to the trader) for pause, flatten, quarantine."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    cmd: ControlCmd
    reason: str | None = Field(default=None, max_length=300)


class ControlReply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool
    state: str
    message: str


class Heartbeat(Record):
    account: AccountId
    ts: datetime = Field(default_factory=utc_now)
    state: AgentState
    pid: int
    """The agent's pid as the agent sees it: inside a sandbox with its own PID namespace (bubblewrap) it
    is 1. The host pid is in the supervisor's `run/agents.json` (each agent's "pid")."""
    rss_mb: float
    cpu_pct: float
    orders_per_min: float
    connection: str
    reason: str = ""
