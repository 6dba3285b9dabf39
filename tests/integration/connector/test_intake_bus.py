"""The intake on real NATS: no message blocks it, unreadable ones are answered and kept in the dead letter."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from nats.aio.client import Client

from mtrobot.bus import subjects
from mtrobot.connector.deadletter import list_dead_letters
from mtrobot.connector.service import Connector, durable_name

from ...unit.connector.fake_terminal import FakeBroker
from . import test_connector_bus, test_connector_sim
from .test_connector_bus import Outputs, order
from .test_connector_sim import Rig

running = test_connector_bus.running  # the fixtures, shared
rig = test_connector_sim.rig

POISON: list[bytes] = [
    b"[" * 30_000 + b"]" * 30_000,
    b'{"order_id": "deep1", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"order_id": "big1", "account": "a", "position": ' + b"7" * 5000 + b"}",
    b'{"order_id": "utf1", "symbol": "\xff\xfe\xfd"}',
    b'{"order_id": "dup1", "order_id": "dup1", "volume": 0.1}',
    b'{"order_id": "nan1", "volume": NaN}',
    b"\x00\x01\x02\x03",
    b"",
    b"[1, 2, 3]",
    b'{"volume": 0.1}',
]
"""Each unreadable: nothing can be journaled, so each is dead-lettered and answered."""


async def settled(js: Any, account: str, timeout: float = 30.0) -> bool:
    """True once the connector's consumer has nothing pending and nothing waiting for an ack."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = await js.consumer_info(subjects.ORDERS_STREAM, durable_name(account))
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_unreadable_messages_are_acknowledged_answered_and_kept_in_the_dead_letter(
    running: tuple[Connector, FakeBroker, Outputs], nc: Client
) -> None:
    connector, broker, out = running
    acc = connector.account
    js = nc.jetstream()
    for payload in POISON:
        await js.publish(subjects.orders_submitted(acc, "EURUSD"), payload)
    assert await settled(js, acc)
    assert await out.until(lambda g: len(g["error"]) == len(POISON))
    assert {e["category"] for e in out.got["error"]} == {"validation"}
    assert {e["account"] for e in out.got["error"]} == {acc}
    answered = {e["order_id"] for e in out.got["error"]}
    assert {"deep1", "big1", "utf1", "dup1", "nan1"} <= answered
    letters = await list_dead_letters(nc, acc)
    assert len(letters) == len(POISON)
    assert sorted(d.payload() for d in letters) == sorted(p[:16384] for p in POISON)
    assert all(d.reason.startswith("The order was refused") and len(d.reason) < 200 for d in letters)
    await js.publish(subjects.orders_submitted(acc, "EURUSD"), order(acc, "good1"))
    assert await out.until(lambda g: any(f["order_id"] == "good1" for f in g["fill"]), 5)
    assert len(broker.sends) == 1


async def test_thousands_of_poison_messages_change_nothing_for_the_next_good_order(
    running: tuple[Connector, FakeBroker, Outputs], nc: Client
) -> None:
    connector, broker, out = running
    acc = connector.account
    js = nc.jetstream()
    count = 2000
    started = time.monotonic()
    for i in range(count):
        await js.publish(subjects.orders_submitted(acc, "EURUSD"), POISON[i % len(POISON)])
    assert await settled(js, acc, 60)
    drained = time.monotonic() - started
    assert await out.until(lambda g: len(g["error"]) == count, 10)
    published = time.monotonic()
    await js.publish(subjects.orders_submitted(acc, "EURUSD"), order(acc, "after"))
    assert await out.until(lambda g: any(f["order_id"] == "after" for f in g["fill"]), 1.0)
    print(f"{count} poison messages drained in {drained:.2f}s; next order filled in "
          f"{time.monotonic() - published:.3f}s")  # fmt: skip
    assert len(await list_dead_letters(nc, acc, limit=0)) == count and len(broker.sends) == 1


async def test_no_coercion_on_the_bus_and_the_subject_symbol_must_match(
    running: tuple[Connector, FakeBroker, Outputs], nc: Client
) -> None:
    connector, broker, out = running
    acc = connector.account
    js = nc.jetstream()
    cases = {
        "c1": {"volume": True},
        "c2": {"volume": "0.01"},
        "c3": {"volume": 1e308},
        "c4": {"volume": 1e-12},
    }
    for oid, over in cases.items():
        await js.publish(subjects.orders_submitted(acc, "EURUSD"), order(acc, oid, **over))
    await js.publish(subjects.orders_submitted(acc, "GBPUSD"), order(acc, "c5"))
    await js.publish(
        subjects.orders_submitted(acc, "EURUSD"), b'{"order_id": "c6", "volume": 0.1, "volume": 1}'
    )
    wanted = {"c1", "c2", "c3", "c4", "c5", "c6"}
    assert await out.until(lambda g: {e["order_id"] for e in g["error"]} >= wanted)
    words = {e["order_id"]: e["message"] for e in out.got["error"]}
    assert "field 'volume'" in words["c1"] and "field 'volume'" in words["c2"]
    assert "field 'volume'" in words["c3"] and len(words["c3"]) < 150
    assert "Volume 0 " not in words["c4"] and "1e-12" in words["c4"]
    assert "field 'symbol'" in words["c5"] and "GBPUSD" in words["c5"]
    assert "'volume' is given more than once" in words["c6"]
    assert broker.sends == []


async def test_an_order_the_broker_cannot_take_is_refused_at_once_and_delays_nothing(rig: Rig) -> None:
    started = time.monotonic()
    big = await rig.submit(action="close", position=2**70, order_type=None, volume=None)
    assert await rig.final(big, 5) == "rejected"
    [error] = rig.errors(big)
    assert error["category"] == "validation" and "field 'position'" in error["message"]
    assert time.monotonic() - started < 2.0
    good = await rig.submit()
    assert await rig.final(good, 5) == "filled"


async def test_the_dead_letter_is_listed_by_the_cli(
    running: tuple[Connector, FakeBroker, Outputs], nc: Client, nats_url: str
) -> None:
    connector, _, out = running
    acc = connector.account
    await nc.jetstream().publish(subjects.orders_submitted(acc, "EURUSD"), b'{"order_id": "cli1", x')
    assert await out.until(lambda g: any(e["order_id"] == "cli1" for e in g["error"]))
    env = dict(os.environ, MTROBOT_NATS_URL=nats_url, MTROBOT_DATA_DIR=str(connector.settings.data_dir))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mtrobot", "deadletter", "list", "--account", acc, "--json", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    [line] = stdout.decode().splitlines()
    letter = json.loads(line)
    assert letter["order_id"] == "cli1" and letter["account"] == acc and "not JSON" in letter["reason"]
