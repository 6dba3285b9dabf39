"""Fixtures for the tenants part: a fresh database per test on SQLite and on PostgreSQL, the web app,
and helpers that act like a trader through the HTTP API."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from mtrobot.settings import Settings
from mtrobot.storage import accounts as account_repo
from mtrobot.web.app import create_app
from mtrobot.web.config import WebOptions
from mtrobot.web.credentials import to_columns
from mtrobot.web.state import AppState
from tests.e2e.proc_tools import mtrobot_command, wait_until

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One throwaway PostgreSQL database for the session (each test gets its own schema in it)."""
    name = f"mtrobot_t_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'mtrobot.db'}"
        return
    database = request.getfixturevalue("pg_database")
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}", autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}", autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def settings(data_dir: Path, db_url: str) -> Settings:
    return Settings(data_dir=data_dir, database_url=db_url, nats_url="")


def make_client(settings: Settings, **options: object) -> TestClient:
    opts = WebOptions(**{"listen_to_bus": False, **options})  # type: ignore[arg-type]
    # https: the session cookie is Secure, and a cookie jar only sends it back over https.
    return TestClient(create_app(settings, opts), base_url="https://testserver")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with make_client(settings) as c:
        yield c


def state_of(client: TestClient) -> AppState:
    state: AppState = client.app.state.mtrobot  # type: ignore[attr-defined]
    return state


@pytest.fixture(scope="session")
def sim_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real ``mtrobot simbroker`` on a free port, announcing itself in DATA_DIR/run/simbroker.json."""
    data_dir = tmp_path_factory.mktemp("sim") / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTROBOT_")}
    log = open(data_dir.parent / "simbroker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(mtrobot_command("simbroker", "--data-dir", str(data_dir), "--seed", "7"),
                            stdout=log, stderr=subprocess.STDOUT, env=env)  # fmt: skip
    try:
        wait_until((data_dir / "run" / "simbroker.json").exists, 30, "simbroker.json", proc)
        yield data_dir
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


@dataclass
class Trader:
    """A signed-in trader: a client with its own cookie jar and the CSRF token."""

    client: TestClient
    id: str
    email: str
    csrf: str

    def headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf}

    def get(self, url: str, **kw: object):
        return self.client.get(url, **kw)  # type: ignore[arg-type]

    def send(self, method: str, url: str, **kw: object):
        headers = {**self.headers(), **kw.pop("headers", {})}  # type: ignore[dict-item]
        return self.client.request(method, url, headers=headers, **kw)  # type: ignore[arg-type]

    def token(self, scope: str) -> str:
        r = self.send("POST", "/api/v1/tokens", json={"name": f"{scope} token", "scope": scope})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def sibling(app_client: TestClient, **kw: object) -> TestClient:
    """Another client (its own cookie jar) on the same app and the same event loop as ``app_client``,
    as browsers of several people talking to one server."""
    c = TestClient(app_client.app, base_url="https://testserver", **kw)  # type: ignore[arg-type]
    c.portal = app_client.portal
    return c


def register(app_client: TestClient, name: str = "trader") -> Trader:
    """A new trader on its own client (own cookies) sharing the app of ``app_client``."""
    c = sibling(app_client)
    email = f"{name}-{secrets.token_hex(4)}@example.com"
    r = c.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD, "name": name})
    assert r.status_code == 201, r.text
    body = r.json()
    return Trader(c, body["trader"]["id"], email, body["csrf_token"])


def seed_account(
    state: AppState, trader_id: str, password: str = "mt5-secret-pw", server: str = "Sim-Demo"
) -> str:
    """Store an account as a passed connection test would (sealed password), without a broker."""
    account_id = f"acct-{secrets.token_hex(5)}"
    sealed = state.vault.seal(account_id, password)
    with state.sessions.begin() as db:
        account_repo.add_account(
            db,
            account_id=account_id,
            trader_id=trader_id,
            server=server,
            login=secrets.randbelow(10**9) + 1,
            sealed=to_columns(sealed),
        )
    return account_id
