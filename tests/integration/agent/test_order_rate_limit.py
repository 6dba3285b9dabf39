"""The order-rate limit on an agent's intake, with a real supervisor, a real ``mtrobot agent`` process, the
real nats-server and simbroker: a flood past the limit is refused before the broker (no audited broker call
for a refused order), each refusal says which limit, and the flood still counts: the agent's heartbeat and
the supervisor's flood quarantine see every order."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from mtrobot.bus import subjects
from mtrobot.storage import accounts as account_repo
from mtrobot.supervisor.quarantine import QuarantinePolicy
from mtrobot.supervisor.runtime import choose_runtime
from tests.integration.agent.agents import Platform, Trader, running, until

pytestmark = pytest.mark.slow

LIMIT = "order-rate limit (60 orders a minute, at most 5 at once)"


def cpu_shares(pid: int) -> int | None:
    """The cgroup v1 ``cpu.shares`` of ``pid``'s CPU group (None where there is none: no v1 cpu here)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(",") and path != "/":
            for mount in (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/cpu,cpuacct")):
                if (mount / path.lstrip("/") / "cpu.shares").exists():
                    return int((mount / path.lstrip("/") / "cpu.shares").read_text())
    return None


def _ended(trader: Trader, order_id: str) -> bool:
    return bool({"filled", "rejected"} & set(trader.states(order_id)))


async def test_a_flood_past_the_intake_limit_is_refused_before_the_broker_and_still_quarantined(
    platform: Platform, nc: Client
) -> None:
    platform.settings = platform.settings.model_copy(update={"orders_per_min": 60.0, "order_burst": 5})
    supervisor = platform.supervisor(
        choose_runtime(platform.settings), quarantine=QuarantinePolicy(max_orders_per_min=50.0)
    )
    async with running(supervisor):
        account, _login = await platform.connect_account()
        trader = await Trader(nc, account).listen()
        audited: list[dict[str, Any]] = []

        async def on_audit(msg: Any) -> None:
            audited.append(json.loads(msg.data))

        await nc.subscribe(subjects.audit_broker(account), cb=on_audit)
        await trader.wait_running()

        flood = await asyncio.gather(*(trader.buy() for _ in range(30)))  # under the flood quarantine
        await until(lambda: all(_ended(trader, o) for o in flood), 60, "every flood order to end")
        filled = [o for o in flood if trader.filled(o)]
        errors = {e["order_id"]: e for e in trader.errors if e["order_id"] in flood}
        # The burst goes through, then one a second: the rest is refused by the limit, by name.
        assert 5 <= len(filled) <= 10, len(filled)
        assert len(filled) + len(errors) == len(flood)
        for order_id, error in errors.items():
            assert LIMIT in error["message"], error
            assert error["category"] == "validation"
            assert error["retcode_name"] == "TRADE_RETCODE_TOO_MANY_REQUESTS"
            assert trader.states(order_id) == ["received", "rejected"]

        # Every filled order's broker calls are audited; not one call for a refused order.
        sent = lambda: {r["order_id"] for r in audited if r["operation"] == "order_send"}  # noqa: E731
        await until(lambda: set(filled) <= sent(), 15, "the audit of the filled orders")
        assert not {r["order_id"] for r in audited} & set(errors)

        # Refused, yet counted: the agent's heartbeat, and 30 more pass the supervisor's flood limit (50).
        beat = lambda: trader.heartbeats[-1]["orders_per_min"] if trader.heartbeats else 0  # noqa: E731
        await until(lambda: beat() >= 30, 15, "a heartbeat counting the refused orders")
        more = await asyncio.gather(*(trader.buy() for _ in range(30)))

        def state() -> tuple[str, str]:
            with platform.sessions() as db:
                row = account_repo.account_by_id(db, account)
                assert row is not None
                return str(row.agent_state), str(row.agent_reason)

        await until(lambda: state()[0] == "quarantined", 20, "the flood's quarantine")
        assert "order flood" in state()[1]
        process = supervisor.slots[account].process
        assert process is not None
        if "cgroup v1" in process.isolation.get("cpu", ""):  # the least CPU weight, where a cgroup has one
            assert cpu_shares(process.pid) == 2
        await until(lambda: all(_ended(trader, o) for o in more), 60, "every later order to end")
        assert len([o for o in more if trader.filled(o)]) <= 5
