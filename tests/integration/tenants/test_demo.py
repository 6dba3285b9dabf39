"""The demo tenant that ``mtrobot up`` creates on a fresh data dir."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from fastapi.testclient import TestClient

from mtrobot.settings import Settings
from mtrobot.sim.admin import SimAdmin
from mtrobot.web.demo import DEMO_ACCOUNT_ID, demo_login, ensure_demo
from mtrobot.web.servers import simbroker_file
from tests.integration.tenants.conftest import make_client, sibling


def test_ensure_demo_creates_a_trader_with_one_simulated_account_and_an_active_portfolio(
    sim_data_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(data_dir=sim_data_dir, database_url=f"sqlite:///{tmp_path / 'demo.db'}", nats_url="")
    assert asyncio.run(ensure_demo(settings)) == DEMO_ACCOUNT_ID
    assert asyncio.run(ensure_demo(settings)) == DEMO_ACCOUNT_ID  # idempotent
    login = demo_login(settings)
    assert stat.S_IMODE((sim_data_dir / "demo-login.json").stat().st_mode) == 0o600
    with make_client(settings) as app:
        browser: TestClient = sibling(app)
        r = browser.post("/api/v1/auth/login", json={"email": login.email, "password": login.password})
        assert r.status_code == 200, r.text
        csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
        accounts = browser.get("/api/v1/accounts").json()
        assert [a["id"] for a in accounts] == [DEMO_ACCOUNT_ID]
        assert browser.get(f"/api/v1/accounts/{DEMO_ACCOUNT_ID}/portfolio").json()["active"] is True
        test = browser.post(f"/api/v1/accounts/{DEMO_ACCOUNT_ID}/test", headers=csrf).json()
        assert test["ok"] is True, test
    admin = SimAdmin.from_run_file(simbroker_file(settings))
    state = asyncio.run(admin.account_state(login=accounts[0]["login"]))
    assert state["balance"] == 10_000
