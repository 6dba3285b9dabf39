"""The connector in-process on real NATS (JetStream intake, outputs, audit), real chDB, a fake terminal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from pydantic import SecretStr

from mtrobot.bus import subjects
from mtrobot.connector.backoff import Backoff
from mtrobot.connector.health import HealthServer
from mtrobot.connector.options import ConnectorOptions
from mtrobot.connector.service import Connector, ConnectorParts, durable_name
from mtrobot.recorder.service import Recorder
from mtrobot.settings import Settings

from ...unit.connector.fake_terminal import FakeBroker, FakeTerminal


class Outputs:
    def __init__(self) -> None:
        self.got: dict[str, list[dict[str, Any]]] = {"fill": [], "order": [], "error": []}

    async def subscribe(self, nc: Client, account: str) -> None:
        for kind, items in self.got.items():

            async def cb(msg: Any, items: list[dict[str, Any]] = items) -> None:
                items.append(json.loads(msg.data))

            await nc.subscribe(f"broker.{kind}.{account}.>", cb=cb)

    async def until(self, predicate: Any, timeout: float = 10.0) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if predicate(self.got):
                return True
            await asyncio.sleep(0.02)
        return predicate(self.got)


@pytest.fixture
async def running(
    nats_url: str, nc: Client, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Connector, FakeBroker, Outputs]]:
    account = "bus-" + request.node.name[-20:].lower().replace("_", "-").strip("-")
    broker = FakeBroker()
    outputs = Outputs()
    await outputs.subscribe(nc, account)
    options = ConnectorOptions(retry_backoff=Backoff(0.01, 0.02), pending_poll_s=0.2)
    connector = Connector(
        account,
        Settings(data_dir=tmp_path / "data"),
        SecretStr("pw"),
        options,
        ConnectorParts(lambda: FakeTerminal(broker)),
        nats_url=nats_url,
        use_hub=False,
    )
    await connector.start()
    yield connector, broker, outputs
    await connector.stop()


def order(account: str, oid: str, **over: Any) -> bytes:
    return json.dumps(
        {"order_id": oid, "account": account, "symbol": "EURUSD", "order_type": "buy", "volume": 0.1} | over
    ).encode()


async def test_an_order_published_on_the_bus_fills_and_is_recorded_everywhere(
    running: tuple[Connector, FakeBroker, Outputs], nc: Client, recorder: Recorder
) -> None:
    connector, broker, out = running
    acc = connector.account
    js = nc.jetstream()
    await js.publish(subjects.orders_submitted(acc, "EURUSD"), order(acc, "b1"))
    assert await out.until(lambda g: any(f["order_id"] == "b1" for f in g["fill"]))
    assert await out.until(lambda g: [u["state"] for u in g["order"]][-1:] == ["filled"])
    assert [u["state"] for u in out.got["order"]] == ["received", "validated", "sent", "filled"]
    assert await out.until(lambda g: recorder.executions.count(acc, "b1") == 1)
    info = await js.consumer_info(subjects.ORDERS_STREAM, durable_name(acc))
    assert info.config.filter_subject == f"orders.submitted.{acc}.>"
    await js.publish(subjects.orders_submitted(acc, "EURUSD"), order(acc, "b1"))
    assert await out.until(lambda g: g["order"][-1]["state"] == "duplicate")
    assert len(broker.sends) == 1 and recorder.executions.count(acc, "b1") == 1
    sub = await js.subscribe(subjects.audit_broker(acc), ordered_consumer=True)
    ops = set()
    with pytest.raises(Exception):  # noqa: B017 - reading until the stream has no more
        while True:
            ops.add(json.loads((await sub.next_msg(timeout=1)).data)["operation"])
    assert {"initialize", "order_check", "order_send", "symbol_info"} <= ops


async def test_a_bad_payload_gives_a_validation_error_naming_the_field(
    running: tuple[Connector, FakeBroker, Outputs], nc: Client
) -> None:
    connector, broker, out = running
    acc = connector.account
    await nc.jetstream().publish(subjects.orders_submitted(acc, "EURUSD"), order(acc, "bad1", lots=1))
    assert await out.until(lambda g: any(e["order_id"] == "bad1" for e in g["error"]))
    [err] = out.got["error"]
    assert err["category"] == "validation" and "'lots'" in err["message"] and broker.sends == []


async def test_health_endpoints_report_liveness_readiness_and_metrics(
    running: tuple[Connector, FakeBroker, Outputs],
) -> None:
    connector, _, _ = running
    server = HealthServer(connector, port=0)
    server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
            for _ in range(100):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            assert (await client.get("/healthz")).json()["status"] == "ok"
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["session"] == "connected"
            metrics = (await client.get("/metrics")).text
            assert "mtrobot_connector_session_connected" in metrics
            assert (await client.get("/nowhere")).status_code == 404
            assert (await client.post("/healthz")).status_code == 405
            head = await client.head("/healthz")
            assert head.status_code == 200 and head.content == b""
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"not http\r\n\r\n")
        reply = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    finally:
        await server.stop()


async def test_retries_changed_in_the_hub_take_effect_without_a_restart(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    from mtrobot.hub.store import HubStore

    account = "bus-hot-reload"
    broker = FakeBroker()
    out = Outputs()
    await out.subscribe(nc, account)
    connector = Connector(
        account,
        Settings(data_dir=tmp_path / "data"),
        SecretStr("pw"),
        ConnectorOptions(),
        ConnectorParts(lambda: FakeTerminal(broker)),
        nats_url=nats_url,
        use_hub=True,
    )
    await connector.start()
    try:
        store = HubStore(nc.jetstream())
        doc = {"order_settings": {"max_retries": 0, "retry_delay_seconds": 0.05}}
        await store.put(f"connector.{account}", doc)
        assert await out.until(lambda g: connector.options.current.max_retries == 0)
        js = nc.jetstream()
        broker.requote_next = 2
        await js.publish(subjects.orders_submitted(account, "EURUSD"), order(account, "hr1"))
        assert await out.until(lambda g: any(e["order_id"] == "hr1" for e in g["error"]))
        assert len(broker.sends) == 1  # no retry allowed
        await store.put(
            f"connector.{account}", doc | {"order_settings": {"max_retries": 5, "retry_delay_seconds": 0.05}}
        )
        assert await out.until(lambda g: connector.options.current.max_retries == 5)
        broker.requote_next = 2
        await js.publish(subjects.orders_submitted(account, "EURUSD"), order(account, "hr2"))
        assert await out.until(lambda g: any(f["order_id"] == "hr2" for f in g["fill"]))
        assert len(broker.sends) == 4  # 1 + 2 requotes + the fill
    finally:
        await connector.stop()


async def test_an_order_older_than_the_maximum_age_is_rejected_unsent(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    account = "bus-too-old"
    broker = FakeBroker()
    out = Outputs()
    await out.subscribe(nc, account)
    await nc.jetstream().publish(subjects.orders_submitted(account, "EURUSD"), order(account, "old1"))
    await asyncio.sleep(1.0)  # the order's age is what is under test
    connector = Connector(
        account, Settings(data_dir=tmp_path / "data"), SecretStr("pw"), ConnectorOptions(max_order_age_s=0.5),
        ConnectorParts(lambda: FakeTerminal(broker)), nats_url=nats_url, use_hub=False,
    )  # fmt: skip
    await connector.start()
    try:
        assert await out.until(lambda g: any(e["order_id"] == "old1" for e in g["error"]))
        assert broker.sends == [] and out.got["order"][-1]["state"] == "rejected"
        assert "too old" in out.got["error"][0]["message"]
    finally:
        await connector.stop()
