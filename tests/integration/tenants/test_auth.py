from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.tenants.conftest import PASSWORD, make_client, register

API = "/api/v1"


def test_a_trader_registers_is_signed_in_and_sees_only_public_fields(client: TestClient) -> None:
    trader = register(client)
    me = trader.get(f"{API}/auth/me")
    assert me.status_code == 200
    assert set(me.json()) == {"id", "email", "name", "created_at"}
    cookie = next(c for c in trader.client.cookies.jar if c.name == "mtrobot_session")
    assert cookie.secure and cookie.has_nonstandard_attr("HttpOnly")


def test_registering_an_existing_email_is_a_conflict_naming_the_field(client: TestClient) -> None:
    trader = register(client)
    r = client.post(f"{API}/auth/register", json={"email": trader.email.upper(), "password": PASSWORD})
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["field"] == "email"


def test_a_short_password_is_refused_with_the_field_named(client: TestClient) -> None:
    r = client.post(f"{API}/auth/register", json={"email": "a@example.com", "password": "short"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["password"]


def test_login_rotates_the_session_and_the_old_cookie_stops_working(client: TestClient) -> None:
    trader = register(client)
    old = trader.client.cookies.get("mtrobot_session")
    r = trader.client.post(f"{API}/auth/login", json={"email": trader.email, "password": PASSWORD})
    assert r.status_code == 200
    new = trader.client.cookies.get("mtrobot_session")
    assert new and new != old
    stale = TestClient(client.app, base_url="https://testserver", cookies={"mtrobot_session": old})
    assert stale.get(f"{API}/auth/me").status_code == 401


def test_a_browser_write_without_the_csrf_header_is_refused(client: TestClient) -> None:
    trader = register(client)
    r = trader.client.post(f"{API}/tokens", json={"name": "x", "scope": "read"})
    assert r.status_code == 403
    assert r.json()["code"] == "csrf"
    assert trader.send("POST", f"{API}/tokens", json={"name": "x", "scope": "read"}).status_code == 201


def test_repeated_wrong_passwords_lock_the_login_and_say_when_to_retry(client: TestClient) -> None:
    trader = register(client)
    for _ in range(5):
        r = client.post(f"{API}/auth/login", json={"email": trader.email, "password": "wrong password"})
        assert r.status_code == 401
    r = client.post(f"{API}/auth/login", json={"email": trader.email, "password": PASSWORD})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0


def test_an_unknown_email_and_a_wrong_password_get_the_same_answer(client: TestClient) -> None:
    trader = register(client)
    a = client.post(f"{API}/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
    b = client.post(f"{API}/auth/login", json={"email": trader.email, "password": "not it at all"})
    assert a.status_code == b.status_code == 401
    assert a.json()["detail"] == b.json()["detail"]


def test_logout_ends_the_session(client: TestClient) -> None:
    trader = register(client)
    assert trader.send("POST", f"{API}/auth/logout").status_code == 204
    assert trader.get(f"{API}/auth/me").status_code == 401


def test_changing_the_password_signs_out_every_other_session(client: TestClient) -> None:
    trader = register(client)
    other = TestClient(client.app, base_url="https://testserver")
    assert (
        other.post(f"{API}/auth/login", json={"email": trader.email, "password": PASSWORD}).status_code == 200
    )
    new = "a brand new passphrase"
    r = trader.send("POST", f"{API}/auth/password", json={"current_password": PASSWORD, "new_password": new})
    assert r.status_code == 200
    trader.csrf = r.json()["csrf_token"]
    assert other.get(f"{API}/auth/me").status_code == 401
    assert trader.get(f"{API}/auth/me").status_code == 200


def test_an_api_token_is_shown_once_stored_hashed_and_revocable(client: TestClient) -> None:
    trader = register(client)
    secret = trader.token("read")
    listed = trader.get(f"{API}/tokens").json()
    assert len(listed) == 1 and "token" not in listed[0]
    bearer = {"Authorization": f"Bearer {secret}"}
    assert client.get(f"{API}/auth/me", headers=bearer).json()["id"] == trader.id
    from tests.integration.tenants.conftest import state_of

    with state_of(client).engine.connect() as c:
        dump = "\n".join(str(row) for row in c.exec_driver_sql("SELECT * FROM api_tokens"))
    assert secret not in dump
    assert trader.send("DELETE", f"{API}/tokens/{listed[0]['id']}").status_code == 204
    assert client.get(f"{API}/auth/me", headers=bearer).status_code == 401


def test_an_api_token_cannot_mint_more_tokens(client: TestClient) -> None:
    trader = register(client)
    bearer = {"Authorization": f"Bearer {trader.token('trade')}"}
    r = client.post(f"{API}/tokens", json={"name": "more", "scope": "trade"}, headers=bearer)
    assert r.status_code == 403


def test_an_expired_session_is_refused(settings) -> None:
    from datetime import timedelta

    with make_client(settings, session_idle=timedelta(seconds=-1)) as c:
        trader = register(c)
        r = trader.get(f"{API}/auth/me")
        assert r.status_code == 401
        assert r.json()["code"] == "session_expired"


def test_health_and_readiness_answer(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200
