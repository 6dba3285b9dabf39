"""An account's agent: the trader's kill switch (pause, resume, flatten) and its health.

A ``read`` token can never control an agent (``current_caller`` refuses every write of a read token)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from mtrobot.core.agent import ControlRequest
from mtrobot.web import agents as service
from mtrobot.web.bus import BusUnavailable
from mtrobot.web.deps import AccountDep, StateDep
from mtrobot.web.errors import Conflict, Unavailable, problem_responses
from mtrobot.web.schemas import AgentStatus

router = APIRouter(prefix="/accounts/{account_id}", tags=["agent"])


class ControlBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cmd: Literal["pause", "resume", "flatten"] = Field(
        description="pause: no new positions open (open ones stay, closing works); resume; "
        "flatten: close every open position of the account"
    )
    reason: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] | None = None


class ControlResult(BaseModel):
    ok: bool
    state: str = Field(description="the agent's state: running, paused, quarantined, ... or not running")
    message: str
    applied: bool = Field(
        description="the running agent confirmed it (false: recorded, applied at its start)"
    )


@router.post("/control", responses=problem_responses(401, 403, 404, 409, 422, 503), summary="Kill switch")
async def control(body: ControlBody, account: AccountDep, state: StateDep) -> ControlResult:
    """Pause or resume the account's trading, or close all its positions."""
    default = {"pause": "paused by the trader", "flatten": "asked by the trader"}.get(body.cmd)
    reason = body.reason or default
    recorded = None
    if body.cmd in service.GATE_STATES:
        recorded = await run_in_threadpool(service.record_gate, state, account.id, body.cmd, reason or "")
    try:
        reply = await service.send_control(state, account.id, ControlRequest(cmd=body.cmd, reason=reason))
    except BusUnavailable as exc:
        reply = None
        if recorded is None:
            raise Unavailable(str(exc), code="bus_unavailable") from None
    if reply is not None:
        return ControlResult(ok=reply.ok, state=reply.state, message=reply.message, applied=True)
    if recorded is None:
        raise Conflict(
            "the account's agent is not running or did not answer, so nothing was closed; try again shortly",
            code="agent_not_running",
        )
    words = "Trading paused" if body.cmd == "pause" else "Trading resumed"
    return ControlResult(
        ok=True,
        state=recorded,
        message=f"{words}: recorded; the agent is not running now and applies it when it starts.",
        applied=False,
    )


@router.get("/agent", responses=problem_responses(401, 404, 503))
async def agent_status(account: AccountDep, state: StateDep) -> AgentStatus:
    """The account's agent: its heartbeat (state, pid, memory, CPU, order rate) and its latest snapshot."""
    status = AgentStatus(account_id=account.id, connection="unknown", agent_state=account.agent_state,
                         reason=account.agent_reason or "")  # fmt: skip
    try:
        snapshot = await state.bus.latest_snapshot(account.id)
    except BusUnavailable as exc:
        raise Unavailable(str(exc), code="bus_unavailable") from None
    if snapshot is not None:
        status = status.model_copy(update={
            "connection": snapshot.connection.value, "seq": snapshot.seq, "as_of": snapshot.ts,
            "currency": snapshot.currency, "balance": snapshot.balance, "equity": snapshot.equity,
            "margin_level": snapshot.margin_level, "robots": snapshot.robots,
        })  # fmt: skip
    seen = state.agents.of(account.id)
    if seen is None:
        return status.model_copy(update={"state": "not running"})
    beat, age = seen
    running = age <= service.STALE_AFTER_S
    return status.model_copy(update={
        "state": beat.state.value if running else "not running", "heartbeat_at": beat.ts,
        "heartbeat_age_s": round(age, 1), "pid": beat.pid, "rss_mb": beat.rss_mb, "cpu_pct": beat.cpu_pct,
        "orders_per_min": beat.orders_per_min, "reason": beat.reason or status.reason,
        "connection": beat.connection if running else status.connection,
    })  # fmt: skip
