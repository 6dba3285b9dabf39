from __future__ import annotations

import httpx
import pytest

from mtrobot.hub.api import HubContext, create_app
from mtrobot.hub.client import ConfigClient
from mtrobot.hub.registry import ServiceDirectory
from mtrobot.hub.schemas import ConnectorConfig
from mtrobot.hub.store import HubStore
from tests.integration.hub_helpers import eventually, unique_service

TOKEN = "t" * 43
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def api(nc):
    js = nc.jetstream(timeout=5)
    ctx = HubContext(store=HubStore(js), directory=ServiceDirectory(js), ready=True)
    transport = httpx.ASGITransport(app=create_app(ctx, TOKEN))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://hub", timeout=10, headers=AUTH
    ) as client:
        yield client


async def test_every_api_call_needs_the_hub_token(api) -> None:
    service = unique_service()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        api.headers.clear()
        api.headers.update(headers)
        for method, url in (("GET", "/api/v1/services"), ("PUT", _config_url(service))):
            refused = await api.request(method, url, json={})
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
            assert refused.headers["content-type"] == "application/problem+json"
    api.headers.clear()
    assert (await api.get("/healthz")).status_code == 200
    api.headers.update(AUTH)
    got = await api.get(_config_url(service))
    assert got.status_code == 404, got.text


@pytest.mark.parametrize(
    "field", ["server", "login", "bridge_host", "bridge_port", "backend", "terminal_path", "portable"]
)
async def test_the_hub_refuses_an_accounts_identity_naming_the_field(api, field: str) -> None:
    service = unique_service()
    value = {"server": "Evil-Server", "login": 5, "bridge_host": "10.6.6.6", "bridge_port": 1,
             "backend": "mt5linux", "terminal_path": "C:/evil.exe", "portable": True}[field]  # fmt: skip
    refused = await api.put(_config_url(service), json={"mt5_connection": {field: value}})
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error["field"] == f"mt5_connection.{field}" and "record" in error["message"]
    assert (await api.get(_config_url(service))).status_code == 404


def _config_url(service: str) -> str:
    return f"/api/v1/services/{service}/config"


async def test_an_invalid_put_is_refused_with_the_field_named_and_nothing_written(api) -> None:
    service = unique_service()
    good = await api.put(_config_url(service), json={"order_settings": {"max_retries": 2}})
    assert good.status_code == 200

    refused = await api.put(_config_url(service), json={"mt5_connection": {"timeout_seconds": "soon"}})

    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in refused.json()["errors"]] == ["mt5_connection.timeout_seconds"]
    current = (await api.get(_config_url(service))).json()
    assert current["revision"] == good.json()["revision"]
    assert current["config"] == {"order_settings": {"max_retries": 2}}
    assert len((await api.get(f"/api/v1/services/{service}/history")).json()) == 1


async def test_a_put_holding_a_secret_is_refused_naming_the_field_without_echoing_it(api) -> None:
    service = unique_service()
    refused = await api.put(
        _config_url(service), json={"mt5_connection": {"login": 1, "password": "hunter2"}}
    )
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["mt5_connection.password"]
    assert "hunter2" not in refused.text
    assert (await api.get(_config_url(service))).status_code == 404


async def test_a_body_that_is_not_an_object_and_a_bad_service_name_are_refused(api) -> None:
    assert (await api.put(_config_url(unique_service()), json=[1, 2])).status_code == 422
    bad_name = await api.put(_config_url("Not_A.Service!"), json={})
    assert bad_name.status_code == 422
    assert bad_name.json()["errors"][0]["field"] == "service"


async def test_config_get_put_history_and_rollback_through_the_api(api) -> None:
    service = unique_service()
    first = (await api.put(_config_url(service), json={"order_settings": {"max_retries": 2}})).json()
    second = (await api.put(_config_url(service), json={"order_settings": {"max_retries": 5}})).json()
    assert second["revision"] > first["revision"]

    got = (await api.get(_config_url(service))).json()
    assert got["config"] == {"order_settings": {"max_retries": 5}}
    assert got["schema_name"] == "ConnectorConfig"

    rolled = await api.post(f"/api/v1/services/{service}/rollback", json={"revision": first["revision"]})
    assert rolled.status_code == 200
    got = (await api.get(_config_url(service))).json()
    assert got["revision"] == rolled.json()["revision"]
    assert got["config"] == {"order_settings": {"max_retries": 2}}

    history = (await api.get(f"/api/v1/services/{service}/history")).json()
    assert [h["config"]["order_settings"]["max_retries"] for h in history] == [2, 5, 2]
    missing = await api.post(f"/api/v1/services/{service}/rollback", json={"revision": 10**9})
    assert missing.status_code == 404


async def test_a_put_with_a_stale_if_match_is_refused(api) -> None:
    service = unique_service()
    first = (await api.put(_config_url(service), json={})).json()["revision"]
    await api.put(_config_url(service), json={"order_settings": {"max_retries": 1}})
    stale = await api.put(_config_url(service), json={}, headers={"If-Match": f'"{first}"'})
    assert stale.status_code == 412


async def test_deleting_a_config_and_listing_services_and_running_instances(api, nats_url) -> None:
    service = unique_service()
    await api.put(_config_url(service), json={})
    client = ConfigClient(service, safe_defaults=ConnectorConfig(), nats_url=nats_url, heartbeat_interval=0.2)
    await client.init_async()
    try:

        async def listed() -> bool:
            rows = (await api.get("/api/v1/registry", params={"service": service})).json()
            return [r["instance_id"] for r in rows] == [client.instance_id]

        await eventually(listed, 5, "the running client in the registry")
        summary = {s["service"]: s for s in (await api.get("/api/v1/services")).json()}[service]
        assert summary["running"] == 1 and summary["schema_name"] == "ConnectorConfig"
    finally:
        await client.close()
    assert (await api.get("/api/v1/registry", params={"service": service})).json() == []
    assert (await api.delete(_config_url(service))).status_code == 200
    assert (await api.get(_config_url(service))).status_code == 404


async def test_the_api_says_503_until_the_bus_is_attached() -> None:
    transport = httpx.ASGITransport(app=create_app(HubContext(), TOKEN))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub", headers=AUTH) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/api/v1/services")).status_code == 503
