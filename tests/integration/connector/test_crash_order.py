"""Order after a crash between fetching and journaling: messages a dead run fetched (never acknowledged) are
executed before the ones published after them, as published."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from pydantic import SecretStr

from mtrobot.bus import subjects
from mtrobot.connector.backoff import Backoff
from mtrobot.connector.intake import CrashReorder
from mtrobot.connector.options import ConnectorOptions
from mtrobot.connector.service import Connector, ConnectorParts, durable_name
from mtrobot.settings import Settings

from ...unit.connector.fake_terminal import FakeBroker, FakeTerminal
from .test_connector_bus import Outputs, order


def connector(
    account: str,
    broker: FakeBroker,
    data: Path,
    nats_url: str,
    take_over: bool = True,
    ack_wait_s: float = 2.0,
) -> Connector:
    options = ConnectorOptions(
        retry_backoff=Backoff(0.01, 0.02),
        ack_wait_s=ack_wait_s,
        pending_poll_s=0.2,
        take_over_at_start=take_over,
    )
    parts = ConnectorParts(lambda: FakeTerminal(broker))
    return Connector(account, Settings(data_dir=data), SecretStr("pw"), options, parts, nats_url=nats_url,
                     use_hub=False)  # fmt: skip


@pytest.mark.parametrize("take_over", [True, False], ids=["taken-over-at-start", "after-ack-wait"])
async def test_orders_fetched_by_a_killed_run_execute_before_later_ones(
    nats_url: str, nc: Client, tmp_path: Path, take_over: bool
) -> None:
    """Taken over at once (the consumer rewound), or, where the server refuses that, held in order until
    JetStream redelivers them after ``ack_wait`` (20 s and 2 s here: a take-over cannot pass for the wait)."""
    account = f"crash-order-{int(take_over)}"
    ack_wait_s = 20.0 if take_over else 2.0
    broker = FakeBroker()
    out = Outputs()
    await out.subscribe(nc, account)
    first = connector(account, broker, tmp_path / "data", nats_url, ack_wait_s=ack_wait_s)
    await first.start()  # its intake creates the durable consumer (with that ack_wait)
    assert await out.until(lambda g: first.intake_running, 10)
    await first.stop()
    js = nc.jetstream()
    for i in range(1, 4):
        await js.publish(subjects.orders_submitted(account, "EURUSD"), order(account, f"o{i}"))
    dead = await js.pull_subscribe(
        subjects.orders_submitted_filter(account),
        durable=durable_name(account),
        stream=subjects.ORDERS_STREAM,
    )
    fetched = await dead.fetch(3, timeout=5)  # the killed run: fetched, never journaled nor acknowledged
    assert [json.loads(m.data)["order_id"] for m in fetched] == ["o1", "o2", "o3"]
    await dead.unsubscribe()
    for i in range(4, 7):
        await js.publish(subjects.orders_submitted(account, "EURUSD"), order(account, f"o{i}"))
    second = connector(account, broker, tmp_path / "data", nats_url, take_over, ack_wait_s)
    restarted = time.monotonic()
    await second.start()
    try:
        done = await out.until(lambda g: len({f["order_id"] for f in g["fill"]}) == 6, 40)
        assert done, [f["order_id"] for f in out.got["fill"]]
        took = time.monotonic() - restarted
        assert took < ack_wait_s / 2 if take_over else took >= ack_wait_s / 2
    finally:
        await second.stop()
    assert [s["comment"] for s in broker.sends] == [f"m-o{i}" for i in range(1, 7)]


class Msg:
    def __init__(self, seq: int) -> None:
        self.metadata: Any = type("M", (), {"sequence": type("S", (), {"stream": seq})()})()


def test_the_hold_releases_in_stream_order_once_the_old_ones_are_back_or_at_the_deadline() -> None:
    gate = CrashReorder(pending=2, delivered_upto=10, give_up_s=5.0, now=0.0)
    assert gate.admit([Msg(11), Msg(12)], now=1.0) == []
    assert gate.admit([Msg(7)], now=2.0) == []
    assert [m.metadata.sequence.stream for m in gate.admit([Msg(9)], now=3.0)] == [7, 9, 11, 12]
    assert not gate.active and [m.metadata.sequence.stream for m in gate.admit([Msg(13)], 4.0)] == [13]
    late = CrashReorder(pending=1, delivered_upto=10, give_up_s=5.0, now=0.0)
    assert late.admit([Msg(11)], now=1.0) == []
    assert [m.metadata.sequence.stream for m in late.admit([], now=6.0)] == [11]
