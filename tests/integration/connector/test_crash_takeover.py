"""kill -9 of a connector process with a batch fetched and not acknowledged, at the default ``ack_wait``
(30 s): the restarted connector takes those messages over at once (it rewinds its consumer to the ack
floor) instead of waiting for JetStream to redeliver them. Real TCP simbroker, real NATS, a real SIGKILL:
every order fills once, in publication order, and the last one long before ``ack_wait`` could pass."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from mtrobot.broker import constants as mt5
from mtrobot.bus import subjects
from mtrobot.core.ids import comment_tag

from .simfixtures import SimBrokerProcess
from .test_crash import Lane, broker_deals

ACK_WAIT_S = 30.0  # the default (ConnectorOptions.ack_wait_s, ORDER_CONSUMER_ACK_WAIT_S)
BOUND_S = 15.0  # from the restart to the last fill: half of ack_wait, which the old path could not beat


class DefaultAckWaitLane(Lane):
    def config(self) -> bytes:
        cfg = json.loads(super().config())
        cfg |= {"ack_wait_s": ACK_WAIT_S, "fetch_batch": 4}
        return (json.dumps(cfg) + "\n").encode()


async def test_a_killed_connectors_fetched_orders_fill_at_once_after_the_restart_in_order(
    nats_url: str, nc: Client, simbroker: SimBrokerProcess, tmp_path: Path
) -> None:
    login = await simbroker.admin().create_account(
        server=simbroker.servers[0], password="Crash-pw1", investor_password="Crash-inv1", balance=10**7
    )
    lane = DefaultAckWaitLane(7, simbroker, login, nats_url, tmp_path / "lane")
    lane.account = "takeover"
    lane.data_dir.mkdir()
    filled_at: dict[str, float] = {}

    async def on_fill(msg: Any) -> None:
        filled_at.setdefault(json.loads(msg.data)["order_id"], time.monotonic())

    await nc.subscribe(f"broker.fill.{lane.account}.>", cb=on_fill)
    js = nc.jetstream()

    async def publish(oid: str) -> None:
        body = {"order_id": oid, "account": lane.account, "symbol": "EURUSD", "order_type": "buy",
                "volume": 0.01}  # fmt: skip
        await js.publish(subjects.orders_submitted(lane.account, "EURUSD"), json.dumps(body).encode())

    oids = [f"k{i}" for i in range(1, 7)]
    for oid in oids[:4]:
        await publish(oid)
    dying = await lane.spawn("after_admit:1")  # fetches k1..k4, journals k1, SIGKILLs itself
    await asyncio.wait_for(dying.wait(), 60)
    killed = time.monotonic()
    assert dying.returncode == -signal.SIGKILL and filled_at == {}
    for oid in oids[4:]:  # published while no connector runs: they must still come after k1..k4
        await publish(oid)
    restarted = await lane.spawn("")
    respawned = time.monotonic()
    try:
        deadline = respawned + 2 * ACK_WAIT_S
        while len(filled_at) < len(oids) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        restarted.send_signal(signal.SIGTERM)
        await asyncio.wait_for(restarted.wait(), 20)

    never_journaled = min(filled_at.get(o, float("inf")) for o in oids[1:4])
    last = max(filled_at.values(), default=float("inf"))
    print(f"\nkill -9 -> restart spawned {respawned - killed:.2f} s; kill -9 -> first fill "
          f"{min(filled_at.values(), default=float('inf')) - killed:.2f} s, first never-journaled order "
          f"{never_journaled - killed:.2f} s, all {len(oids)} filled {last - killed:.2f} s")  # fmt: skip
    assert sorted(filled_at) == oids
    assert last - respawned < BOUND_S, "the orders the dead run fetched waited for ack_wait"
    deals = await broker_deals(simbroker, login)
    by_tag: dict[str, list[int]] = defaultdict(list)
    for d in deals:
        if d.type in (mt5.DEAL_TYPE_BUY, mt5.DEAL_TYPE_SELL) and d.entry == mt5.DEAL_ENTRY_IN:
            by_tag[d.comment].append(d.order)
    executions = [by_tag.get(comment_tag(lane.account, oid), []) for oid in oids]
    assert all(len(e) == 1 for e in executions), executions  # each once at the broker
    assert [e[0] for e in executions] == sorted(e[0] for e in executions)  # in publication order
