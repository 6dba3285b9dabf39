"""The pages and the demo-account step, over HTTP: what is served, with what policy, and what is refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mtrobot.settings import Settings
from mtrobot.web.assets import OWN_STATIC
from tests.integration.tenants.conftest import make_client, register, sim_data_dir  # noqa: F401

PAGES = ["/signin", "/signup", "/onboarding", "/dashboard"]


@pytest.fixture
def web(sim_data_dir: Path, tmp_path: Path) -> Iterator[TestClient]:  # noqa: F811
    database = f"sqlite:///{tmp_path / 'web.db'}"
    settings = Settings(data_dir=sim_data_dir, database_url=database, nats_url="")
    with make_client(settings) as client:
        yield client


def test_the_home_page_leads_to_the_dashboard_and_each_page_may_load_only_this_sites_files(web) -> None:
    home = web.get("/", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (307, "/dashboard")
    for path in PAGES:
        page = web.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy and "unsafe" not in policy
        for asset in re.findall(r'(?:src|href)="(/[^"]+)"', page.text):
            assert web.get(asset).status_code == 200, f"{path} refers to {asset}, which is not served"
    for path in ("/docs", "/redoc"):
        assert "default-src 'self'" in web.get(path).headers["content-security-policy"]


def test_no_page_script_or_style_of_ours_names_another_host() -> None:
    for path in OWN_STATIC.rglob("*"):
        if path.suffix in (".html", ".js", ".css"):
            assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", path.read_text()), path


def test_a_demo_account_is_opened_and_connected_with_a_password_nobody_sees(web) -> None:
    trader = register(web, "demo-opener")
    r = trader.send("POST", "/api/v1/brokers/demo-accounts", json={"deposit": 5000, "leverage": 50})
    assert r.status_code == 201, r.text
    account = r.json()
    servers = trader.get("/api/v1/brokers/servers").json()
    assert account["server"] in [s["name"] for s in servers if s["simulated"]]
    assert account["login"] > 0 and account["tested_at"] is not None and "password" not in r.text
    listed = trader.get("/api/v1/accounts").json()
    assert [a["id"] for a in listed] == [account["id"]]


def test_a_demo_account_request_is_refused_in_plain_words_naming_the_field(web) -> None:
    trader = register(web, "demo-refused")
    cases = [
        ({"server": "Nowhere-Demo"}, "server", "not a simulated server"),
        ({"deposit": "1000"}, "deposit", "must be a number"),
        ({"deposit": 10}, "deposit", "must be 100 or more"),
        ({"leverage": 5000}, "leverage", "must be 1000 or less"),
        ({"password": "x"}, "password", "is not something this form accepts"),
    ]
    for body, field, words in cases:
        r = trader.send("POST", "/api/v1/brokers/demo-accounts", json=body)
        problem = r.json()
        assert r.status_code == 422, (body, r.text)
        assert problem["errors"][0]["field"] == field and words in problem["errors"][0]["message"], problem


def test_the_fourth_demo_account_is_refused(web) -> None:
    trader = register(web, "demo-limit")
    for _ in range(3):
        assert trader.send("POST", "/api/v1/brokers/demo-accounts", json={}).status_code == 201
    r = trader.send("POST", "/api/v1/brokers/demo-accounts", json={})
    assert (r.status_code, r.json()["code"]) == (409, "account_limit")


def test_without_a_simulator_there_is_no_demo_account(data_dir: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{tmp_path / 'bare.db'}", nats_url="")
    with make_client(settings) as client:
        trader = register(client, "no-sim")
        r = trader.send("POST", "/api/v1/brokers/demo-accounts", json={})
    assert (r.status_code, r.json()["code"]) == (404, "no_simulator")
    assert "connect an account of your broker" in r.json()["detail"]
