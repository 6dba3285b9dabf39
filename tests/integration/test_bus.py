from __future__ import annotations

import asyncio

import pytest

from mtrobot.bus import subjects
from mtrobot.bus.connect import BUCKETS, STREAMS, connect, provision
from mtrobot.status import collect_status
from tests.contracts import PROVISIONED_ON_THE_BUS


async def test_provisioning_creates_every_stream_and_bucket_and_is_idempotent(nc) -> None:
    js = nc.jetstream(timeout=5)
    first = await provision(js)
    second = await provision(js)
    assert first == second
    for stream in STREAMS:
        info = await js.stream_info(stream.name)
        assert info.config.subjects == stream.subjects
    for bucket in BUCKETS:
        kv = await js.key_value(bucket.bucket)
        await kv.put("probe", b"1")
    hub = await js.key_value(subjects.HUB_BUCKET)
    assert (await hub.status()).history >= 10


async def test_status_reports_every_contract_name(nats_url: str) -> None:
    rows = await collect_status(nats_url, 3)
    names = {name for _, name, messages, _ in rows if messages >= 0}
    assert names == PROVISIONED_ON_THE_BUS


async def test_an_order_request_lands_in_the_orders_stream(nc) -> None:
    js = nc.jetstream(timeout=5)
    ack = await js.publish(subjects.orders_submitted("acc-1", "EURUSD"), b"{}")
    assert ack.stream == "ORDERS"


def test_subjects_refuse_an_account_id_that_would_break_the_subject() -> None:
    with pytest.raises(ValueError, match="account id"):
        subjects.broker_fill("a.b", "EURUSD")
    assert subjects.broker_fill("a", "US500.cash") == "broker.fill.a.US500~cash"


async def test_a_client_reconnects_after_the_server_restarts(tmp_path) -> None:
    from mtrobot.bus.server import EmbeddedNats

    server = EmbeddedNats(tmp_path / "n")
    url = await server.start()
    client = await connect(url, "reconnect-test")
    await server.stop()
    server2 = EmbeddedNats(tmp_path / "n", port=server.port)
    await server2.start()
    try:
        sub = await client.subscribe("ping")
        await client.flush(timeout=5)
        await client.publish("ping", b"x")
        msg = await sub.next_msg(timeout=5)
        assert msg.data == b"x"
    finally:
        await client.close()
        await server2.stop()


async def test_provisioning_turns_on_the_hub_buckets_direct_gets_and_republish(tmp_path) -> None:
    """A hub bucket made by an older version (no direct gets, no republish) is still read by a config
    client (through the stream API), and `provision` updates it so that agents can follow their keys."""
    from nats.js.api import KeyValueConfig

    from mtrobot.bus.server import EmbeddedNats
    from mtrobot.hub.client import ConfigClient
    from mtrobot.hub.schemas import ConnectorConfig

    server = EmbeddedNats(tmp_path / "n")
    url = await server.start()
    nc = await connect(url, "old-bucket")
    client: ConfigClient[ConnectorConfig] | None = None
    try:
        js = nc.jetstream(timeout=5)
        old = await js.create_key_value(KeyValueConfig(bucket=subjects.HUB_BUCKET, history=20))
        await old.put("connector.acc-1", b'{"order_settings": {"max_retries": 2}}')
        client = ConfigClient("connector.acc-1", ConnectorConfig(), nc=nc, register=False)
        await client.init_async(timeout=10)
        assert client.source == "hub"
        assert (await client.get_config()).order_settings.max_retries == 2

        await provision(js)
        info = await js.stream_info(f"KV_{subjects.HUB_BUCKET}")
        assert info.config.allow_direct
        assert info.config.republish is not None
        assert info.config.republish.dest == f"{subjects.HUB_STORED_PREFIX}>"
        stored = await nc.subscribe(subjects.hub_stored("connector.acc-1"))
        await nc.flush(timeout=2)
        revision = await old.put("connector.acc-1", b'{"order_settings": {"max_retries": 3}}')
        change = await stored.next_msg(timeout=5)
        assert int(change.headers["Nats-Sequence"]) == revision  # the revision travels with the change
        async with asyncio.timeout(5):  # and the running client follows it, without a consumer
            while client.revision != revision:
                await asyncio.sleep(0.02)
        assert (await client.get_config()).order_settings.max_retries == 3
    finally:
        if client is not None:
            await client.close()
        await nc.close()
        await server.stop()
