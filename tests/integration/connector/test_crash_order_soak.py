"""1,000 orders of one account while its connector process is SIGKILLed 5 times at random instants (real TCP
simbroker, real NATS): 0 duplicates, 0 lost (each ends terminal, each filled one executed once), 0 executed
out of publication order at the broker."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from mtrobot.broker import constants as mt5
from mtrobot.bus import subjects
from mtrobot.core.ids import comment_tag

from .simfixtures import SimBrokerProcess
from .test_crash import TERMINAL, Lane, broker_deals

ORDERS = 1000
KILLS = 5


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_thousand_orders_and_five_kills_execute_once_each_in_publication_order(
    nats_url: str, nc: Client, simbroker: SimBrokerProcess, tmp_path: Path
) -> None:
    started = time.monotonic()
    rng = random.Random(20261202)
    login = await simbroker.admin().create_account(
        server=simbroker.servers[0], password="Crash-pw1", investor_password="Crash-inv1", balance=10**8
    )
    lane = Lane(9, simbroker, login, nats_url, tmp_path / "lane")
    lane.account = "order-soak"
    lane.data_dir.mkdir()
    last_state: dict[str, str] = {}

    async def on_update(msg: Any) -> None:
        update = json.loads(msg.data)
        if last_state.get(update["order_id"]) not in TERMINAL or update["state"] == "duplicate":
            last_state[update["order_id"]] = update["state"]

    await nc.subscribe(f"broker.order.{lane.account}.>", cb=on_update)
    js = nc.jetstream()
    oids = [f"s{i:04d}" for i in range(ORDERS)]
    kill_after = sorted(rng.sample(range(50, ORDERS - 50), KILLS))

    async def publish() -> None:
        for oid in oids:
            body = {"order_id": oid, "account": lane.account, "symbol": "EURUSD",
                    "order_type": rng.choice(["buy", "sell"]), "volume": 0.01}  # fmt: skip
            await js.publish(subjects.orders_submitted(lane.account, "EURUSD"), json.dumps(body).encode())
            await asyncio.sleep(0.004)

    proc = await lane.spawn("")
    publisher = asyncio.create_task(publish())
    kills = 0
    try:
        for threshold in kill_after:  # a kill once this many orders are terminal, plus a random instant
            while sum(1 for o in oids if last_state.get(o) in TERMINAL) < threshold:
                await asyncio.sleep(0.01)
            await asyncio.sleep(rng.uniform(0.0, 0.2))
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            kills += 1
            proc = await lane.spawn("")
        await publisher
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(last_state.get(o) in TERMINAL for o in oids):
            await asyncio.sleep(0.1)
    finally:
        publisher.cancel()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    deals = await broker_deals(simbroker, login)
    by_tag: dict[str, set[int]] = defaultdict(set)
    first_deal: dict[str, int] = {}
    for d in deals:
        if d.type in (mt5.DEAL_TYPE_BUY, mt5.DEAL_TYPE_SELL):
            by_tag[d.comment].add(d.order)
            first_deal[d.comment] = min(first_deal.get(d.comment, d.ticket), d.ticket)
    executed = [oid for oid in oids if by_tag.get(comment_tag(lane.account, oid))]
    duplicates = [oid for oid in oids if len(by_tag.get(comment_tag(lane.account, oid), ())) > 1]
    lost = [oid for oid in oids if last_state.get(oid) not in TERMINAL]
    order = [first_deal[comment_tag(lane.account, oid)] for oid in executed]
    out_of_order = sum(1 for a, b in pairwise(order) if b < a)
    print(f"\ncrash order soak: {ORDERS} orders, {kills} SIGKILLs, {len(executed)} executed, "
          f"{len(duplicates)} duplicates, {len(lost)} not terminal, {out_of_order} out of order; "
          f"{time.monotonic() - started:.1f} s")  # fmt: skip
    assert kills == KILLS and duplicates == [] and lost == [] and out_of_order == 0
    assert all((last_state[o] == "filled") == (o in executed) for o in oids)
