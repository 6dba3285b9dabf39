"""Tenant isolation, enumerated over the app's OpenAPI document so that a new endpoint is covered by default.

An operation that declares a security requirement goes through ``current_caller`` (the only dependency that
declares the schemes), so "needs a caller" is read from the document itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mtrobot.storage import orders as order_repo
from tests.integration.tenants.conftest import Trader, register, seed_account, state_of

UNAUTHENTICATED = {"/api/v1/auth/register", "/api/v1/auth/login"}

# A valid body for every route that takes one; a new route without an entry fails the test on purpose.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/auth/register"): {"email": "x@example.com", "password": "long enough pw"},
    ("POST", "/api/v1/auth/login"): {"email": "x@example.com", "password": "pw"},
    ("POST", "/api/v1/auth/password"): {"current_password": "a", "new_password": "long enough pw"},
    ("POST", "/api/v1/tokens"): {"name": "t", "scope": "read"},
    ("POST", "/api/v1/accounts/validate"): {"server": "Sim-Demo"},
    ("POST", "/api/v1/accounts"): {"server": "Sim-Demo", "login": 1, "password": "pw"},
    ("POST", "/api/v1/brokers/demo-accounts"): {"deposit": 1000},
    ("PUT", "/api/v1/accounts/{account_id}/portfolio"): {"active": True, "robots": []},
    ("POST", "/api/v1/accounts/{account_id}/control"): {"cmd": "pause"},
    ("POST", "/api/v1/accounts/{account_id}/orders"): {
        "symbol": "EURUSD",
        "order_type": "buy",
        "volume": 0.1,
    },
    ("PATCH", "/api/v1/accounts/{account_id}/orders/{order_id}"): {"price": 1.1},
    ("PATCH", "/api/v1/accounts/{account_id}/positions/{ticket}"): {"symbol": "EURUSD", "sl": 1.0},
    ("POST", "/api/v1/accounts/{account_id}/positions/{ticket}/close"): {"symbol": "EURUSD"},
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    secured: bool
    has_body: bool
    params: tuple[str, ...]


def operations(client: TestClient) -> list[Operation]:
    found = []
    for path, ops in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if not path.startswith("/api/v1"):
            continue
        for method, op in ops.items():
            found.append(
                Operation(method.upper(), path, bool(op.get("security")), "requestBody" in op,
                          tuple(re.findall(r"{(\w+)}", path)))
            )  # fmt: skip
    return found


def call(trader: Trader, op: Operation, ids: dict[str, str], bearer: str | None = None):
    url = op.path.format(**{name: ids[name] for name in op.params})
    body = BODIES.get((op.method, op.path))
    if op.has_body:
        assert body is not None, f"add a sample body for {op.method} {op.path} to BODIES"
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return trader.send(op.method, url, json=body, headers=headers)


@pytest.fixture
def two_traders(client: TestClient) -> tuple[Trader, Trader, dict[str, str]]:
    a, b = register(client, "alice"), register(client, "bob")
    state = state_of(client)
    account = seed_account(state, a.id)
    with state.sessions.begin() as db:
        order_repo.add_order(db, account, "a-order-1", action="open", symbol="EURUSD", order_type="buy_limit",
                             volume=0.1, price=1.05, ticket=777, state="accepted")  # fmt: skip
    a.token("read")
    token_id = a.get("/api/v1/tokens").json()[0]["id"]
    ids = {"account_id": account, "order_id": "a-order-1", "token_id": token_id, "ticket": "777"}
    return a, b, ids


def test_every_api_route_except_sign_up_and_sign_in_requires_a_caller(client: TestClient) -> None:
    assert {op.path for op in operations(client) if not op.secured} == UNAUTHENTICATED


@pytest.mark.parametrize("b_uses", ["session", "trade token"])
def test_trader_b_with_trader_a_ids_gets_404_on_every_endpoint(
    client: TestClient, two_traders, b_uses
) -> None:
    a, b, ids = two_traders
    bearer = b.token("trade") if b_uses == "trade token" else None
    checked = 0
    for op in operations(client):
        if op.path.startswith("/api/v1/auth/"):
            continue  # about the caller itself: there is no other trader's id to pass
        if bearer and op.path.startswith("/api/v1/tokens"):
            continue  # tokens are managed from a browser session only (403 for any token)
        r = call(b, op, ids, bearer)
        if op.params:
            assert r.status_code == 404, f"{op.method} {op.path} gave {r.status_code}: {r.text}"
            assert r.headers["content-type"] == "application/problem+json"
            checked += 1
        else:
            assert r.status_code < 500, f"{op.method} {op.path} gave {r.status_code}"
        # A 404 may echo the id B sent; nothing else of A's may appear anywhere.
        secrets = (a.email,) if op.params else (a.email, ids["account_id"], ids["token_id"], "a-order-1")
        for secret in secrets:
            assert secret not in r.text, f"{op.method} {op.path} leaked {secret}"
    assert checked >= 15


def test_a_read_token_cannot_change_anything_on_any_endpoint(client: TestClient, two_traders) -> None:
    a, _b, ids = two_traders
    read = a.token("read")
    writes = [op for op in operations(client) if op.method not in ("GET", "HEAD") and op.secured]
    assert len(writes) >= 12
    for op in writes:
        r = call(a, op, ids, bearer=read)
        assert r.status_code == 403, f"{op.method} {op.path} gave {r.status_code}: {r.text}"
    with state_of(client).sessions() as db:
        assert [o.order_id for o in order_repo.orders_of(db, ids["account_id"])] == ["a-order-1"]


def test_a_read_token_can_read(client: TestClient, two_traders) -> None:
    a, _b, ids = two_traders
    bearer = {"Authorization": f"Bearer {a.token('read')}"}
    r = client.get(f"/api/v1/accounts/{ids['account_id']}/orders", headers=bearer)
    assert r.status_code == 200 and r.json()[0]["order_id"] == "a-order-1"
