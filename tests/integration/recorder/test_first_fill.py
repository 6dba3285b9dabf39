"""The first fill of a brand-new account reaches ``executions`` exactly once, on the bus ``mtrobot up`` runs.

nats-server 2.15.1 can drop the first message on a subscription made just before it, on a subject imported
from another account (docs/security.md). An agent publishes its fills in its own NATS account, plainly (no
JetStream ack can come back to it through the export), and the platform's ``FILLS`` stream captures them
through the platform account's import of that account, which is created only when the agent first starts.
So the moment at risk is an account's very first fill: here each order waits in ``ORDERS`` before the
account's NATS account exists, and the agent fills it as soon as it has logged in. Real parts throughout: the
embedded nats-server in JWT mode, the supervisor with real ``mtrobot agent`` processes, a real simbroker and
``mtrobot recorder`` writing chDB.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from mtrobot.bus import identity, layout, subjects
from mtrobot.bus.connect import connect, provision
from mtrobot.bus.server import EmbeddedNats
from mtrobot.settings import Settings
from tests.integration.agent.agents import Platform, until
from tests.integration.connector.simfixtures import simbroker  # noqa: F401 - a real TCP simbroker

from .helpers import caught_up, executions_rows, spawn_recorder
from .helpers import until as until_async

pytestmark = pytest.mark.slow

NEW_ACCOUNTS = 3


@pytest.fixture
async def jwt_bus(data_dir: Path) -> AsyncIterator[tuple[Settings, Client]]:
    """The embedded bus as ``mtrobot up`` runs it (JWT accounts, no anonymous client), provisioned; yields
    the settings pointing at it and an operator connection."""
    settings = Settings(data_dir=data_dir)
    settings.ensure_dirs()
    server = EmbeddedNats(settings.nats_store_dir, auth=identity.prepare_embedded(settings))
    url = await server.start()
    settings = settings.model_copy(update={"nats_url": url})
    admin = await connect(url, "test-admin", creds=str(identity.creds_path(settings, layout.ADMIN)))
    try:
        await provision(admin.jetstream(timeout=10))
        yield settings, admin
    finally:
        await admin.close()
        await server.stop()


@pytest.fixture
def platform(jwt_bus: tuple[Settings, Client], simbroker: object) -> Iterator[Platform]:  # noqa: F811
    p = Platform(jwt_bus[0], simbroker)
    yield p
    p.close()


async def _first_order(admin: Client, account: str) -> str:
    order_id = "first" + uuid.uuid4().hex[:10]
    request = {"order_id": order_id, "account": account, "symbol": "EURUSD", "order_type": "buy",
               "volume": 0.01}  # fmt: skip
    await admin.jetstream(timeout=5).publish(
        subjects.orders_submitted(account, "EURUSD"), json.dumps(request).encode(),
        headers={"Nats-Msg-Id": f"{account}/{order_id}"},
    )  # fmt: skip
    return order_id


async def _in_stream(admin: Client, account: str) -> dict[str, Any] | None:
    """The last fill of ``account`` the FILLS stream holds, or None."""
    try:
        msg = await admin.jetstream(timeout=5).get_last_msg(
            subjects.FILLS_STREAM, subjects.broker_fill(account, "EURUSD")
        )
    except Exception:
        return None
    return dict(json.loads(msg.data or b"{}"))


@pytest.mark.timeout(240)
async def test_the_first_fill_of_a_brand_new_account_is_recorded_exactly_once(
    platform: Platform, jwt_bus: tuple[Settings, Client], data_dir: Path
) -> None:
    settings, admin = jwt_bus
    seen: dict[str, list[dict[str, Any]]] = {}

    async def on_fill(msg: Any) -> None:
        fill = json.loads(msg.data)
        seen.setdefault(fill["account"], []).append(fill)

    # Long-lived, like the platform's own subscriptions: made before any agent account exists.
    await admin.subscribe("broker.fill.>", cb=on_fill)
    recorder = await spawn_recorder(settings.nats_url or "", data_dir, "--batch", "10", "--ack-wait", "2")
    supervisor = platform.supervisor()
    task = None
    try:
        firsts = {}
        for _ in range(NEW_ACCOUNTS):  # each order waits in ORDERS before its account's NATS account exists
            account, _login = await platform.connect_account()
            firsts[account] = await _first_order(admin, account)
        task = asyncio.create_task(supervisor.run())
        for account, order_id in firsts.items():
            await until(lambda a=account: bool(seen.get(a)), 120, f"the first fill of {account}")  # type: ignore[misc]
            assert [f["order_id"] for f in seen[account]] == [order_id]
        js = admin.jetstream(timeout=5)
        assert await until_async(lambda: caught_up(js), 60), "the recorder did not catch up"
        for account, order_id in firsts.items():
            stored = await _in_stream(admin, account)
            assert stored is not None, f"the FILLS stream missed the first fill of {account}"
            assert stored["order_id"] == order_id
    finally:
        supervisor.stop()
        if task is not None:
            await asyncio.wait_for(task, 60)
        if recorder.returncode is None:
            recorder.send_signal(signal.SIGTERM)
            await asyncio.wait_for(recorder.wait(), 30)
    for account, order_id in firsts.items():
        rows = await executions_rows(data_dir / "chdb", account)
        assert [r["order_id"] for r in rows] == [order_id], (account, rows)
