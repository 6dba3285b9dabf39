"""Connecting MT5 accounts against the real TCP simbroker, through the isolated connection-test process."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mtrobot.bus.server import free_port
from mtrobot.settings import Settings
from mtrobot.sim.admin import SimAdmin
from mtrobot.web.config import ServerInfo
from tests.integration.tenants.conftest import Trader, make_client, register

MASTER, INVESTOR = "Master-pass-1", "Investor-pass-1"


def sim_account(data_dir: Path, password: str = MASTER) -> tuple[str, int]:
    """A fresh simulated account: (server, login)."""
    run_file = data_dir / "run" / "simbroker.json"
    info = json.loads(run_file.read_text())
    server = info["servers"][0]
    server = server["name"] if isinstance(server, dict) else server
    admin = SimAdmin.from_run_file(run_file)
    login = asyncio.run(admin.create_account(server=server, password=password, investor_password=INVESTOR))
    return server, login


@pytest.fixture
def web(sim_data_dir: Path, db_url: str) -> Iterator[TestClient]:
    dead = ServerInfo("Closed-Broker", "sim", "", (("host", "127.0.0.1"), ("port", free_port())))
    settings = Settings(data_dir=sim_data_dir, database_url=db_url, nats_url="")
    with make_client(settings, extra_servers=(dead,), probe_timeout_s=5.0) as client:
        yield client


def connect(trader: Trader, server: str, login: int | str, password: str) -> tuple[int, dict, float]:
    started = time.perf_counter()
    r = trader.send("POST", "/api/v1/accounts", json={"server": server, "login": login, "password": password})
    return r.status_code, r.json(), time.perf_counter() - started


def test_register_then_connect_after_a_typo_and_an_investor_password(
    web: TestClient, sim_data_dir, capsys
) -> None:
    started = time.perf_counter()
    trader = register(web)
    server, login = sim_account(sim_data_dir)
    servers = [s["name"] for s in trader.get("/api/v1/brokers/servers").json()]
    assert server in servers

    status, body, typo_s = connect(trader, server, login, MASTER.lower())
    assert (status, body["code"], body["errors"][0]["field"]) == (422, "wrong_password", "password")
    assert "password" in body["detail"] and MASTER.lower() not in json.dumps(body)

    status, body, investor_s = connect(trader, server, login, INVESTOR)
    assert (status, body["code"]) == (422, "investor_password")
    assert "investor (read-only) password" in body["detail"] and "master" in body["detail"]

    status, body, right_s = connect(trader, server, login, MASTER)
    assert status == 201, body
    assert (body["server"], body["login"]) == (server, login)
    assert set(body) >= {"id", "label", "company", "currency"} and "password" not in json.dumps(body).lower()
    total = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nconnect flow API time: typo {typo_s:.3f}s, investor {investor_s:.3f}s, "
              f"right {right_s:.3f}s, whole flow with registration {total:.3f}s")  # fmt: skip
    # Relative to a refusal measured in the same run (the machine may be busy): connecting with the right
    # password costs one more broker login than refusing a typo, never a wait of its own.
    assert right_s < max(1.0, 2 * typo_s), (
        f"connecting took {right_s:.2f} s of API time (typo {typo_s:.2f} s)"
    )
    assert [a["id"] for a in trader.get("/api/v1/accounts").json()] == [body["id"]]


def test_a_stored_account_retests_without_the_web_decrypting_it(web: TestClient, sim_data_dir) -> None:
    trader = register(web)
    server, login = sim_account(sim_data_dir)
    status, body, _ = connect(trader, server, login, MASTER)
    assert status == 201
    r = trader.send("POST", f"/api/v1/accounts/{body['id']}/test")
    assert r.status_code == 200 and r.json()["ok"] is True, r.text


def test_the_fourth_account_is_refused_with_a_clear_message(web: TestClient, sim_data_dir) -> None:
    trader = register(web)
    for _ in range(3):
        server, login = sim_account(sim_data_dir)
        assert connect(trader, server, login, MASTER)[0] == 201
    server, login = sim_account(sim_data_dir)
    status, body, _ = connect(trader, server, login, MASTER)
    assert (status, body["code"]) == (409, "account_limit")
    assert "3 MT5 accounts" in body["detail"] and "remove one" in body["detail"]
    assert len(trader.get("/api/v1/accounts").json()) == 3


def test_an_unknown_server_is_refused_before_any_connection_with_a_hint(
    web: TestClient, sim_data_dir
) -> None:
    trader = register(web)
    server, login = sim_account(sim_data_dir)
    status, body, _ = connect(trader, server.upper() + "X", login, MASTER)
    assert (status, body["code"], body["errors"][0]["field"]) == (422, "unknown_server", "server")
    check = trader.send("POST", "/api/v1/accounts/validate", json={"server": server.lower(), "login": "12a"})
    fields = check.json()["fields"]
    assert not fields["server"]["valid"] and f"Did you mean '{server}'" in fields["server"]["message"]
    assert not fields["login"]["valid"] and "digits" in fields["login"]["message"]
    ok = trader.send(
        "POST", "/api/v1/accounts/validate", json={"server": server, "login": login, "password": "x"}
    )
    assert ok.json()["valid"] is True


def test_an_unreachable_broker_is_explained(web: TestClient) -> None:
    trader = register(web)
    status, body, _ = connect(trader, "Closed-Broker", 1234, MASTER)
    assert (status, body["code"]) == (422, "broker_unreachable")
    assert "could not be reached" in body["detail"]


def test_the_same_mt5_account_cannot_be_connected_twice(web: TestClient, sim_data_dir) -> None:
    alice, bob = register(web, "alice"), register(web, "bob")
    server, login = sim_account(sim_data_dir)
    assert connect(alice, server, login, MASTER)[0] == 201
    status, body, _ = connect(bob, server, login, MASTER)
    assert (status, body["code"]) == (409, "already_connected")


def test_the_probe_child_gets_no_master_key_or_database_url_in_its_environment(monkeypatch) -> None:
    from mtrobot.web.connection import probe_env

    monkeypatch.setenv("MTROBOT_MASTER_KEY", "k")
    monkeypatch.setenv("MTROBOT_DATABASE_URL", "postgresql://u:p@h/db")
    env = probe_env()
    assert "PATH" in env and not any(k.startswith("MTROBOT_") for k in env)
