"""The trader's kill switch and the agent's health, over the bus.

- Control (``POST /api/v1/accounts/{id}/control``): ``pause`` and ``resume`` are first recorded in the
  database (``mt5_accounts.agent_state``), so the kill switch holds even while the agent is down or
  restarting (the supervisor hands the recorded state to every agent it starts), then sent to the running
  agent on ``agent.control.{account}``; ``flatten`` needs the running agent.
- Health (``GET /api/v1/accounts/{id}/agent``): the latest heartbeat of each agent, kept from
  ``agent.heartbeat.*`` (:class:`AgentBoard`), with the latest snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import nats.errors
from nats.aio.msg import Msg
from pydantic import ValidationError

from mtrobot.bus import subjects
from mtrobot.bus.codec import decode
from mtrobot.core.agent import HEARTBEAT_INTERVAL_S, ControlReply, ControlRequest, Heartbeat
from mtrobot.logging import get_logger
from mtrobot.storage import accounts as account_repo
from mtrobot.web.bus import BusUnavailable

if TYPE_CHECKING:
    from mtrobot.web.state import AppState

log = get_logger(__name__)

CONTROL_TIMEOUT_S = 5.0
STALE_AFTER_S = 3 * HEARTBEAT_INTERVAL_S
"""A heartbeat older than this says the agent is not running (or not reachable)."""
LISTEN_RETRY_S = 5.0


class AgentBoard:
    """The latest heartbeat per account, with when it arrived (monotonic)."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[float, Heartbeat]] = {}

    def seen(self, beat: Heartbeat) -> None:
        self.latest[beat.account] = (time.monotonic(), beat)

    def of(self, account: str) -> tuple[Heartbeat, float] | None:
        """The account's latest heartbeat and its age in seconds, if one was seen."""
        found = self.latest.get(account)
        return None if found is None else (found[1], time.monotonic() - found[0])

    async def on_message(self, msg: Msg) -> None:
        try:
            beat = decode(Heartbeat, msg.data)
        except ValidationError:
            log.warning("unreadable heartbeat", subject=msg.subject)
            return
        if msg.subject == subjects.agent_heartbeat(beat.account):  # an agent speaks only for itself
            self.seen(beat)


async def keep_watching(state: AppState) -> None:
    """Subscribe the board to every agent's heartbeat once the bus is reachable; retry until then."""
    while True:
        try:
            nc = await state.bus.client()
            await nc.subscribe(subjects.agent_heartbeat_all(), cb=state.agents.on_message)
            log.info("watching the agents' heartbeats")
            return
        except (BusUnavailable, nats.errors.Error) as exc:
            log.info("agent heartbeats wait for the bus", reason=str(exc))
        await asyncio.sleep(LISTEN_RETRY_S)


GATE_STATES = {"pause": "paused", "resume": "active"}


def record_gate(state: AppState, account_id: str, cmd: str, reason: str) -> str:
    """Record pause or resume in the database; returns the account's agent state after it."""
    with state.sessions.begin() as db:
        row = account_repo.account_by_id(db, account_id)
        current = str(row.agent_state) if row is not None else "active"
        if cmd == "pause" and current == "quarantined":
            return current  # a pause never hides the quarantine's reason; resume lifts both
        if cmd in GATE_STATES and current != "stopped":
            account_repo.set_agent_state(db, account_id, GATE_STATES[cmd], reason if cmd == "pause" else "")
            return GATE_STATES[cmd]
        return current


async def send_control(state: AppState, account_id: str, request: ControlRequest) -> ControlReply | None:
    """Ask the account's running agent; ``None`` when no agent answered."""
    nc = await state.bus.client()
    with contextlib.suppress(TimeoutError, nats.errors.Error):
        reply = await nc.request(
            subjects.agent_control(account_id), request.model_dump_json().encode(), timeout=CONTROL_TIMEOUT_S
        )
        try:
            return ControlReply.model_validate_json(reply.data)
        except ValidationError:
            log.warning("unreadable control reply", account=account_id)
    return None
