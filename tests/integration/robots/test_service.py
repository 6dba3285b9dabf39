"""The robot host as an agent component on a real NATS server: the portfolio comes from the hub and is
hot-loaded when it changes; orders go to JetStream with a Nats-Msg-Id; events go to robots.event."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from nats.aio.client import Client

from mtrobot.bus import subjects
from mtrobot.hub.store import HubStore
from mtrobot.robots.catalogue import Catalogue
from mtrobot.robots.host import HostOptions
from mtrobot.robots.market import DirectCalls
from mtrobot.robots.service import RobotService
from mtrobot.sim.harness import sim_harness

from .rig import until

PORTFOLIO = {
    "active": True,
    "robots": [
        {"robot": "ma_cross", "symbol": "EURUSD", "timeframe": "M1", "params": {"fast": 3, "slow": 5}}
    ],
}


async def test_the_portfolio_in_the_hub_is_loaded_and_every_change_hot_loads(nc: Client) -> None:
    account = "svc-" + uuid.uuid4().hex[:6]
    store = HubStore(nc.jetstream(timeout=5))  # type: ignore[attr-defined]
    events: list[dict[str, object]] = []

    async def on_event(msg: object) -> None:
        events.append(json.loads(msg.data))  # type: ignore[attr-defined]

    sub = await nc.subscribe(subjects.robot_event(account), cb=on_event)  # type: ignore[attr-defined]
    async with sim_harness(start=datetime(2026, 3, 4, 10, tzinfo=UTC), tcp=False) as sim:
        login = await sim.admin.create_account(
            server="MTRobot-Demo", password="Service-pw1", investor_password="Service-in1"
        )
        terminal = sim.terminal()
        assert await terminal.initialize(login=login, password="Service-pw1", server="MTRobot-Demo")
        await store.put(subjects.portfolio_service(account), PORTFOLIO)
        service = RobotService(
            account, nc, lambda: DirectCalls(terminal), Catalogue(), options=HostOptions(poll_interval_s=0.05)
        )  # type: ignore[arg-type]
        await service.start()
        try:
            assert [(r["name"], r["state"]) for r in service.host.robots()] == [
                ("ma_cross EURUSD M1", "running")
            ]
            changed = json.loads(json.dumps(PORTFOLIO))
            changed["robots"].append({"robot": "rsi_reversion", "symbol": "GBPUSD", "timeframe": "M5"})
            await store.put(subjects.portfolio_service(account), changed)
            assert await until(lambda: len(service.host.robots()) == 2), service.host.robots()
            await store.put(subjects.portfolio_service(account), changed | {"active": False})
            assert await until(lambda: service.host.robots() == [])
            assert await until(lambda: any("not active" in str(e["message"]) for e in events))
        finally:
            await service.stop()
            await sub.unsubscribe()
            await terminal.shutdown()
