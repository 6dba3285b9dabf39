"""Sign-in and registration throttles under concurrency and forged X-Forwarded-For, the body limit, and the
connection-test throttle (a broker login cannot be guessed through the platform)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mtrobot.settings import Settings
from mtrobot.web.app import create_app
from mtrobot.web.config import WebOptions
from tests.integration.tenants.conftest import PASSWORD, make_client, register

API = "/api/v1"


async def _client(settings: Settings, **options: object) -> AsyncIterator[httpx.AsyncClient]:
    opts = WebOptions(**{"listen_to_bus": False, **options})  # type: ignore[arg-type]
    app = create_app(settings, opts)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver", timeout=30) as client:
        yield client


@pytest.fixture
async def web(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(settings):
        yield client


async def _register(web: httpx.AsyncClient, name: str = "t") -> str:
    email = f"{name}-{secrets.token_hex(4)}@example.com"
    r = await web.post(f"{API}/auth/register", json={"email": email, "password": PASSWORD, "name": name})
    assert r.status_code == 201, r.text
    return email


async def _login(web: httpx.AsyncClient, email: str, password: str, **headers: str) -> int:
    r = await web.post(f"{API}/auth/login", json={"email": email, "password": password}, headers=headers)
    return r.status_code


async def test_concurrent_wrong_passwords_are_still_at_most_the_limit(web: httpx.AsyncClient) -> None:
    email = await _register(web)
    codes = await asyncio.gather(*(_login(web, email, f"wrong password {i}") for i in range(20)))
    assert codes.count(401) <= 5 and codes.count(429) >= 15, codes
    assert await _login(web, email, PASSWORD) == 429  # the e-mail is locked, even for the right password


async def test_forged_forwarded_for_does_not_dodge_the_address_limit(settings: Settings) -> None:
    async for web in _client(settings, login_limit=2):  # 2 per e-mail, 8 per address: fewer argon2 runs
        victims = [await _register(web, f"v{i}") for i in range(4)]
        codes = []
        for i in range(10):  # 4 x 2 failures from one address, each claiming another one
            forged = {"X-Forwarded-For": f"10.0.0.{i}"}
            codes.append(await _login(web, victims[i % 4], "wrong password", **forged))
        assert codes[:8] == [401] * 8 and codes[8:] == [429, 429], codes
        bystander = await _register(web, "bystander")
        assert (
            await _login(web, bystander, "also wrong") == 429
        )  # address locked: wrong passwords turned away
        assert await _login(web, bystander, PASSWORD) == 200  # ... but never a trader's correct password


async def test_forwarded_for_is_believed_from_a_configured_proxy_only(settings: Settings) -> None:
    async for web in _client(settings, login_limit=2, trusted_proxies=("203.0.113.0/24",)):
        victims = [await _register(web, f"p{i}") for i in range(5)]
        codes = []
        for i in range(10):  # each real client behind the proxy has its own address: no address lock
            hop = {"X-Forwarded-For": f"198.51.100.{i}, 203.0.113.7"}
            codes.append(await _login(web, victims[i % 5], "wrong password", **hop))
        assert codes.count(401) == 10, codes


async def test_registration_is_throttled_per_address(settings: Settings) -> None:
    async for web in _client(settings, register_limit=3):
        codes = []
        for i in range(5):
            body = {"email": f"r{i}-{secrets.token_hex(3)}@example.com", "password": PASSWORD}
            codes.append((await web.post(f"{API}/auth/register", json=body)).status_code)
        assert codes == [201, 201, 201, 429, 429]


async def test_a_request_body_over_the_limit_is_refused_before_it_is_read(web: httpx.AsyncClient) -> None:
    huge = b'{"email": "a@example.com", "password": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = await web.post(f"{API}/auth/login", content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while it streams
        for _ in range(40):
            yield b"x" * 65536

    r = await web.post(f"{API}/auth/login", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert await _login(web, "a@example.com", "small enough") == 401


def test_connection_tests_are_throttled_per_broker_login(sim_data_dir: Path, db_url: str) -> None:
    from tests.integration.tenants.test_connect import MASTER, connect, sim_account

    settings = Settings(data_dir=sim_data_dir, database_url=db_url, nats_url="")
    with make_client(settings, probe_timeout_s=10.0, probe_limit_login=3, probe_limit_trader=50) as client:
        server, login = sim_account(sim_data_dir)
        attacker, owner = register(client, "attacker"), register(client, "owner")
        codes = [connect(attacker, server, login, f"guess-{i}")[0] for i in range(5)]
        assert codes == [422, 422, 422, 429, 429], codes
        # The limit is the broker login's, whoever tries: the owner waits too, and is told why.
        status, body, _ = connect(owner, server, login, MASTER)
        assert status == 429 and "broker login" in body["detail"]


def test_connection_tests_are_throttled_per_trader(sim_data_dir: Path, db_url: str) -> None:
    from tests.integration.tenants.test_connect import connect, sim_account

    settings = Settings(data_dir=sim_data_dir, database_url=db_url, nats_url="")
    with make_client(settings, probe_timeout_s=10.0, probe_limit_trader=3) as client:
        trader = register(client, "sprayer")
        logins = [sim_account(sim_data_dir) for _ in range(5)]
        codes = [connect(trader, server, login, "guess-1")[0] for server, login in logins]
        assert codes == [422, 422, 422, 429, 429], codes
