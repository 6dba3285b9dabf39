"""The robot catalogue over HTTP, portfolio validation against it, the hub copy the agent hot-loads, and
robot events in the activity log."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from fastapi.testclient import TestClient

from mtrobot.bus import subjects
from mtrobot.bus.connect import connect
from mtrobot.core.events import RobotEvent
from mtrobot.settings import Settings
from tests.integration.tenants.conftest import make_client, register, seed_account, state_of

GOOD = {
    "active": True,
    "robots": [
        {
            "robot": "ma_cross",
            "symbol": "EURUSD",
            "timeframe": "H1",
            "params": {"fast": 12, "slow": 40},
            "sizing": {"mode": "fixed_lots", "lots": 0.02},
            "trading_hours": {"start": "07:00", "end": "21:00"},
        }
    ],
    "risk": {"max_daily_loss_money": 250.0, "max_drawdown_percent": 4.0, "flatten_on_breach": True},
}


def test_the_catalogue_lists_every_robot_with_its_parameters(client: TestClient) -> None:
    trader = register(client)
    robots = {r["name"]: r for r in trader.get("/api/v1/robots").json()}
    assert set(robots) == {"ma_cross", "rsi_reversion", "breakout_atr", "grid_averaging"}
    fast = next(p for p in robots["ma_cross"]["parameters"] if p["name"] == "fast")
    assert fast == {
        "name": "fast",
        "type": "int",
        "default": 10,
        "minimum": 2,
        "maximum": 200,
        "exclusive_minimum": False,
        "exclusive_maximum": False,
        "choices": [],
        "description": "bars of the fast simple moving average",
    }
    assert client.get("/api/v1/robots").status_code == 401


def test_a_portfolio_naming_an_unknown_robot_is_refused_with_the_field_and_nothing_is_saved(
    client: TestClient,
) -> None:
    trader = register(client)
    account = seed_account(state_of(client), trader.id)
    url = f"/api/v1/accounts/{account}/portfolio"
    assert trader.send("PUT", url, json=GOOD).status_code == 200
    bad = json.loads(json.dumps(GOOD))
    bad["robots"][0]["robot"] = "no_such_robot"
    r = trader.send("PUT", url, json=bad)
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "no_such_robot"
    assert body["errors"][0]["field"] == "robots.0.robot"
    assert "there is no robot named 'no_such_robot'; available: breakout_atr" in body["errors"][0]["message"]
    assert trader.get(url).json()["robots"][0]["robot"] == "ma_cross"


def test_parameters_that_do_not_fit_the_robot_are_refused_naming_the_parameter(client: TestClient) -> None:
    trader = register(client)
    url = f"/api/v1/accounts/{seed_account(state_of(client), trader.id)}/portfolio"
    cases = [
        ({"fast": "12"}, "robots.0.params.fast", "Fast must be a whole number."),
        ({"fast": 1}, "robots.0.params.fast", "Fast must be 2 or more."),
        ({"fats": 12}, "robots.0.params.fats", "Fats is not something this form accepts."),
        ({"fast": 50, "slow": 40}, "robots.0.params", "fast (50) must be smaller than slow (40)"),
    ]
    for params, field, says in cases:
        body = json.loads(json.dumps(GOOD))
        body["robots"][0]["params"] = params
        r = trader.send("PUT", url, json=body)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["code"] == "invalid_parameter"
        assert [(e["field"], says in e["message"]) for e in r.json()["errors"]] == [(field, True)], r.text
    body = json.loads(json.dumps(GOOD))
    body["robots"][0]["sizing"]["lots"] = "0.02"
    r = trader.send("PUT", url, json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "robots.0.sizing.lots"


def test_a_saved_portfolio_comes_back_whole_and_says_it_did_not_reach_the_hub_without_a_bus(
    client: TestClient,
) -> None:
    trader = register(client)
    url = f"/api/v1/accounts/{seed_account(state_of(client), trader.id)}/portfolio"
    saved = trader.send("PUT", url, json=GOOD).json()
    assert saved["hub_revision"] is None
    got = trader.get(url).json()
    assert got["robots"][0]["params"] == {"fast": 12, "slow": 40}
    assert got["robots"][0]["sizing"] == {"mode": "fixed_lots", "lots": 0.02, "equity_percent": 1.0}
    assert got["risk"]["max_daily_loss_money"] == 250.0 and got["risk"]["flatten_on_breach"] is True


def on_sqlite_with_the_bus(data_dir: Path, nats_url: str) -> Settings:
    """The hub and the bus are the subject here, not the database: SQLite only."""
    return Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'db.sqlite'}", nats_url=nats_url)


def test_a_saved_portfolio_is_written_to_the_hub_key_the_agent_watches(data_dir: Path, nats_url: str) -> None:
    with make_client(on_sqlite_with_the_bus(data_dir, nats_url)) as app:
        trader = register(app)
        account = seed_account(state_of(app), trader.id)
        saved = trader.send("PUT", f"/api/v1/accounts/{account}/portfolio", json=GOOD).json()
        assert isinstance(saved["hub_revision"], int)

    async def stored() -> dict[str, object]:
        nc = await connect(nats_url, "tests-hub-read")
        try:
            kv = await nc.jetstream(timeout=5).key_value(subjects.HUB_BUCKET)
            entry = await kv.get(subjects.portfolio_service(account))
            return json.loads(entry.value or b"{}")
        finally:
            await nc.close()

    document = asyncio.run(stored())
    assert document["active"] is True
    assert document["robots"][0]["params"] == {"fast": 12, "slow": 40}  # type: ignore[index]
    assert document["risk"]["max_drawdown_percent"] == 4.0  # type: ignore[index]


def test_a_robot_event_on_the_bus_becomes_a_line_of_the_accounts_activity_log(
    data_dir: Path, nats_url: str
) -> None:
    with make_client(on_sqlite_with_the_bus(data_dir, nats_url), listen_to_bus=True) as app:
        trader = register(app)
        account = seed_account(state_of(app), trader.id)
        message = (
            "Robot ma_cross EURUSD H1 paused: its on_bar hook raised ZeroDivisionError: division by zero."
        )

        async def publish() -> None:
            nc = await connect(nats_url, "tests-robot-event")
            try:
                event = RobotEvent(
                    account=account, robot="ma_cross EURUSD H1", kind="paused", message=message
                )
                await nc.publish(subjects.robot_event(account), event.model_dump_json().encode())
                await nc.flush(timeout=5)
            finally:
                await nc.close()

        # the web subscribes in the background: publish until the line shows (a condition, not a duration)
        deadline = time.monotonic() + 15
        lines: list[str] = []
        while time.monotonic() < deadline and message not in lines:
            asyncio.run(publish())
            lines = [a["message"] for a in trader.get(f"/api/v1/accounts/{account}/activity").json()]
        assert message in lines
