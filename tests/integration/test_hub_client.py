from __future__ import annotations

import asyncio
import json
import os

import pytest

from mtrobot.bus import subjects
from mtrobot.bus.connect import connect, provision
from mtrobot.bus.server import EmbeddedNats, free_port
from mtrobot.hub.client import ConfigClient
from mtrobot.hub.errors import RevisionConflict, UnknownRevision
from mtrobot.hub.registry import ServiceDirectory, ServiceRegistration
from mtrobot.hub.schemas import ConnectorConfig
from mtrobot.hub.store import HubStore
from tests.integration.hub_helpers import eventually, unique_service

SAFE = ConnectorConfig.model_validate({"order_settings": {"max_retries": 1}})


@pytest.fixture
def store(nc) -> HubStore:
    return HubStore(nc.jetstream(timeout=5))


@pytest.fixture
async def make_client(nats_url):
    clients: list[ConfigClient] = []

    async def make(service: str, **kwargs) -> ConfigClient:
        kwargs.setdefault("nats_url", nats_url)
        kwargs.setdefault("heartbeat_interval", 0.2)
        client = ConfigClient(service, safe_defaults=SAFE, **kwargs)
        clients.append(client)
        await client.init_async()
        return client

    yield make
    for client in clients:
        await client.close()


async def test_a_put_reaches_a_running_client_within_one_second(store, make_client) -> None:
    service = unique_service()
    client = await make_client(service)
    assert await client.get_config() == SAFE and client.source == "defaults"
    received: asyncio.Queue[tuple[float, ConnectorConfig]] = asyncio.Queue()
    client.on_change(lambda config: received.put_nowait((asyncio.get_running_loop().time(), config)))

    put_at = asyncio.get_running_loop().time()
    revision = await store.put(service, {"mt5_connection": {"timeout_seconds": 30}})
    arrived_at, config = await asyncio.wait_for(received.get(), 5)

    assert arrived_at - put_at < 1.0
    assert config.mt5_connection.timeout_seconds == 30
    assert config.order_settings.max_retries == 1  # the safe default under the stored document
    assert await client.get_config() == config
    assert client.revision == revision and client.source == "hub"


async def test_a_client_starting_after_a_put_begins_with_the_stored_config(store, make_client) -> None:
    service = unique_service()
    await store.put(service, {"position_sync": {"sync_interval_minutes": 2}})
    client = await make_client(service)
    assert (await client.get_config()).position_sync.sync_interval_minutes == 2


async def test_an_async_callback_gets_each_change_and_a_failing_one_does_not_stop_reload(
    store, make_client
) -> None:
    service = unique_service()
    client = await make_client(service)
    seen: list[int] = []

    def broken(_config: ConnectorConfig) -> None:
        raise RuntimeError("callback bug")

    async def record(config: ConnectorConfig) -> None:
        seen.append(config.order_settings.max_retries)

    client.on_change(broken)
    client.on_change(record)
    for retries in (4, 5):
        await store.put(service, {"order_settings": {"max_retries": retries}})
        await eventually(lambda r=retries: seen[-1:] == [r], 5, f"max_retries={retries}")
    assert seen == [4, 5]


async def test_an_invalid_stored_document_never_replaces_the_last_good_one(nc, store, make_client) -> None:
    service = unique_service()
    client = await make_client(service)
    good = await store.put(service, {"order_settings": {"max_retries": 7}})
    await eventually(lambda: client.revision == good, 5, "the good document")
    changes: list[ConnectorConfig] = []
    client.on_change(changes.append)

    # Written behind the hub's back (e.g. with the nats CLI): the client must refuse it on its own, an
    # account's identity too (another broker server or bridge would be sent the account's password).
    kv = await nc.jetstream(timeout=5).key_value(subjects.HUB_BUCKET)
    identity = (
        {"mt5_connection": {"server": "Evil-Live"}},
        {"mt5_connection": {"bridge_host": "203.0.113.9"}},
    )
    for bad in (
        {"order_settings": {"max_retries": "many"}},
        {"mt5_connection": {"password": "x"}},
        *identity,
    ):
        bad_revision = await kv.put(service, json.dumps(bad).encode())
        await eventually(lambda r=bad_revision: client.refused_revision == r, 5, "the refusal")
        assert (await client.get_config()).order_settings.max_retries == 7
        assert client.revision == good
    assert changes == []

    fixed = await store.put(service, {"order_settings": {"max_retries": 2}})
    await eventually(lambda: client.revision == fixed, 5, "the next good document")


async def test_deleting_the_document_returns_running_clients_to_their_safe_defaults(
    store, make_client
) -> None:
    service = unique_service()
    client = await make_client(service)
    await store.put(service, {"order_settings": {"max_retries": 9}})
    await eventually(lambda: client.source == "hub", 5, "the stored document")
    await store.delete(service)
    await eventually(lambda: client.source == "defaults", 5, "the safe defaults")
    assert await client.get_config() == SAFE


async def test_rollback_stores_an_earlier_revision_again_and_clients_follow(store, make_client) -> None:
    service = unique_service()
    client = await make_client(service)
    first = await store.put(service, {"order_settings": {"max_retries": 2}})
    await store.put(service, {"order_settings": {"max_retries": 6}})
    await eventually(lambda: client.source == "hub", 5, "a stored document")

    restored = await store.rollback(service, first)

    assert (await store.get(service)).document == {"order_settings": {"max_retries": 2}}
    await eventually(lambda: client.revision == restored, 5, "the rolled-back document")
    assert (await client.get_config()).order_settings.max_retries == 2
    history = await store.history(service)
    assert [h.revision for h in history][-1] == restored
    assert [h.document for h in history] == [{"order_settings": {"max_retries": n}} for n in (2, 6, 2)]


async def test_rollback_to_a_revision_that_is_not_this_services_is_refused(store) -> None:
    mine, other = unique_service(), unique_service()
    await store.put(mine, {})
    foreign = await store.put(other, {"order_settings": {"max_retries": 3}})
    with pytest.raises(UnknownRevision):
        await store.rollback(mine, foreign)
    with pytest.raises(UnknownRevision):
        await store.rollback(mine, 10**9)


async def test_a_write_based_on_a_stale_revision_is_refused(store) -> None:
    service = unique_service()
    first = await store.put(service, {})
    await store.put(service, {"order_settings": {"max_retries": 3}})
    with pytest.raises(RevisionConflict):
        await store.put(service, {"order_settings": {"max_retries": 4}}, expected_revision=first)
    assert await store.put_if_absent(service, {}) is None
    assert (await store.get(service)).document == {"order_settings": {"max_retries": 3}}


async def test_the_registry_lists_a_running_service_and_drops_it_after_it_stops(nc, make_client) -> None:
    service = unique_service()
    directory = ServiceDirectory(nc.jetstream(timeout=5))
    client = await make_client(service)

    await eventually(lambda: _running(directory, service), 5, "the registry entry")
    [instance] = await directory.running(service)
    assert (instance.pid, instance.instance_id) == (os.getpid(), client.instance_id)
    assert instance.config_source == "defaults"

    await client.close()
    assert await directory.running(service) == []


async def test_an_instance_that_dies_without_a_goodbye_is_dropped_after_missed_heartbeats(nc) -> None:
    service = unique_service("agent")
    js = nc.jetstream(timeout=5)
    directory = ServiceDirectory(js)
    registration = ServiceRegistration(service, interval=0.2)
    await registration.start(js)
    assert [i.instance_id for i in await directory.running(service)] == [registration.instance_id]

    await registration.stop(deregister=False)  # as if the process were killed

    await eventually(lambda: _running(directory, service, expect=False), 5, "the stale entry to drop")


async def _running(directory: ServiceDirectory, service: str, expect: bool = True) -> bool:
    return bool(await directory.running(service)) == expect


async def test_a_client_started_with_the_bus_down_runs_on_safe_defaults_then_converges(tmp_path) -> None:
    port = free_port()
    service = unique_service()
    client = ConfigClient(
        service, safe_defaults=SAFE, nats_url=f"nats://127.0.0.1:{port}",
        connect_timeout=0.5, retry_delay=0.1, max_retry_delay=0.3, heartbeat_interval=0.2,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.init_async()
    try:
        assert loop.time() - started < 3
        assert await client.get_config() == SAFE
        assert client.source == "defaults" and not client.connected
        converged = asyncio.Event()
        client.on_change(lambda _config: converged.set())

        server = EmbeddedNats(tmp_path / "late-nats", port=port)
        url = await server.start()
        try:
            nc = await connect(url, "late-writer")
            js = nc.jetstream(timeout=5)
            await provision(js)
            await HubStore(js).put(service, {"mt5_connection": {"keepalive_interval_seconds": 3}})
            await asyncio.wait_for(converged.wait(), 10)
            assert (await client.get_config()).mt5_connection.keepalive_interval_seconds == 3
            assert client.source == "hub" and client.connected
            directory = ServiceDirectory(js)
            await eventually(lambda: _running(directory, service), 5, "the late registry entry")
            await nc.close()
        finally:
            await client.close()
            await server.stop()
    finally:
        await client.close()


async def test_a_running_client_keeps_reloading_after_the_bus_restarts(tmp_path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    url = await server.start()
    service = unique_service()
    writer = await connect(url, "restart-writer")
    js = writer.jetstream(timeout=5)
    await provision(js)
    await HubStore(js).put(service, {"order_settings": {"max_retries": 2}})
    client = ConfigClient(service, safe_defaults=SAFE, nats_url=url, heartbeat_interval=0.2)
    await client.init_async()
    restarted = None
    try:
        assert (await client.get_config()).order_settings.max_retries == 2
        await server.stop()
        restarted = EmbeddedNats(tmp_path / "nats", port=server.port)
        await restarted.start()
        await eventually(lambda: client.connected and writer.is_connected, 10, "both clients to reconnect")

        await HubStore(writer.jetstream(timeout=5)).put(service, {"order_settings": {"max_retries": 8}})

        async def reloaded() -> bool:
            return (await client.get_config()).order_settings.max_retries == 8

        await eventually(reloaded, 10, "the put after the restart")
    finally:
        await client.close()
        await writer.close()
        if restarted is not None:
            await restarted.stop()
        await server.stop()


async def test_a_client_can_share_the_services_own_connection_and_leaves_it_open(nc, store) -> None:
    service = unique_service()
    client = ConfigClient(service, safe_defaults=SAFE, nc=nc, heartbeat_interval=0.2)
    await client.init_async()
    try:
        revision = await store.put(service, {"order_settings": {"max_retries": 4}})
        await eventually(lambda: client.revision == revision, 5, "the put over the shared connection")
    finally:
        await client.close()
    assert nc.is_connected
    assert (await store.get(service)).revision == revision
