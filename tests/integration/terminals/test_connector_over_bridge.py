"""The whole order path over the ``mt5linux`` backend: NATS, connector, rpyc bridge, "MetaTrader5", broker.

The bridge server process serves the simulator dressed as the MetaTrader5 module, connected to a real
``mtrobot simbroker`` process, so the connector's lookups after a lost answer really go through the bridge.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from pydantic import SecretStr

from mtrobot.broker.backends import open_terminal
from mtrobot.connector.backoff import Backoff
from mtrobot.connector.options import ConnectorOptions
from mtrobot.connector.service import Connector, ConnectorParts
from mtrobot.settings import Settings
from tests.integration.connector.simfixtures import SimBrokerProcess
from tests.integration.connector.simfixtures import simbroker as simbroker
from tests.integration.connector.test_connector_bus import Outputs
from tests.integration.connector.test_connector_sim import PASSWORD, Rig
from tests.standin.bridge_server import BridgeProcess, running_bridge


@pytest.fixture(scope="module")
def sim_bridge() -> Iterator[BridgeProcess]:
    with running_bridge(module="sim") as bridge:
        yield bridge


@pytest.fixture
async def rig(
    nats_url: str, nc: Client, tmp_path: Path, simbroker: SimBrokerProcess, sim_bridge: BridgeProcess
) -> AsyncIterator[Rig]:
    admin = simbroker.admin()
    server = simbroker.servers[0]
    await admin.reset_faults(server=server)
    login = await admin.create_account(server=server, password=PASSWORD, investor_password="Sim-inv1",
                                       balance=100_000.0)  # fmt: skip
    sim_bridge.mt5.standin_target(simbroker.port)  # the bridge's "MetaTrader5" trades on this simbroker
    account = "bridge-" + uuid.uuid4().hex[:8]
    out = Outputs()
    await out.subscribe(nc, account)
    options = ConnectorOptions(
        backend="mt5linux", login=login, server=server, retry_backoff=Backoff(0.01, 0.05),
        reconnect_backoff=Backoff(0.05, 0.4), pending_poll_s=0.2, keepalive_s=1.0, unknown_settle_s=2.0,
        max_retries=3, send_timeout_s=3.0,
    )  # fmt: skip

    def factory() -> Any:
        return open_terminal("mt5linux", port=sim_bridge.port)

    connector = Connector(account, Settings(data_dir=tmp_path / "data"), SecretStr(PASSWORD), options,
                          ConnectorParts(factory), nats_url=nats_url, use_hub=False)  # fmt: skip
    await connector.start()
    assert await connector.session.wait_ready(10)
    yield Rig(connector, out, simbroker, admin, server, login, nc)
    await connector.stop()
    await admin.reset_faults(server=server)


async def test_a_market_order_fills_through_the_bridge(rig: Rig) -> None:
    oid = await rig.submit()
    assert await rig.final(oid) == "filled"
    assert rig.states(oid) == ["received", "validated", "sent", "filled"]
    [fill] = rig.fills(oid)
    assert fill["volume"] == 0.01 and fill["deal"] > 0
    assert await rig.executions_at_broker(oid) == 1


async def test_an_answer_lost_behind_the_bridge_is_looked_up_and_never_sent_twice(rig: Rig) -> None:
    await rig.admin.lose_replies(server=rig.server, n=1, mode="drop")
    oid = await rig.submit()
    assert await rig.final(oid, 20) == "filled"
    assert await rig.executions_at_broker(oid) == 1 and len(rig.fills(oid)) == 1
    entry = rig.connector.journal.get(oid) if rig.connector.journal else None
    assert entry is not None and entry.attempts == 1  # found by the lookup through the bridge
    assert await rig.connector.session.wait_ready(10)
