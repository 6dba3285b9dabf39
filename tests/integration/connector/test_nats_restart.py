"""NATS restarted under a running connector: orders in the stream are neither lost nor executed twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from mtrobot.broker.backends import open_terminal
from mtrobot.bus import subjects
from mtrobot.bus.connect import connect, provision
from mtrobot.bus.server import EmbeddedNats
from mtrobot.connector.backoff import Backoff
from mtrobot.connector.options import ConnectorOptions
from mtrobot.connector.service import Connector, ConnectorParts
from mtrobot.core.ids import comment_tag
from mtrobot.settings import Settings

from .simfixtures import SimBrokerProcess
from .test_connector_bus import Outputs

TERMINAL = {"filled", "rejected", "cancelled", "expired"}


async def test_nats_restarted_mid_stream_loses_no_order_and_duplicates_none(
    tmp_path: Path, simbroker: SimBrokerProcess
) -> None:
    nats = EmbeddedNats(tmp_path / "nats")
    url = await nats.start()
    admin = simbroker.admin()
    server = simbroker.servers[0]
    login = await admin.create_account(
        server=server, password="Nats-pw1", investor_password="Nats-inv1", balance=100_000.0
    )
    account = "natsrestart-" + uuid.uuid4().hex[:6]
    nc = await connect(url, "test-nats-restart")
    await provision(nc.jetstream(timeout=10))
    out = Outputs()
    await out.subscribe(nc, account)
    options = ConnectorOptions(login=login, server=server, retry_backoff=Backoff(0.01, 0.05), ack_wait_s=3.0)
    connector = Connector(
        account,
        Settings(data_dir=tmp_path / "data"),
        SecretStr("Nats-pw1"),
        options,
        ConnectorParts(lambda: open_terminal("sim", host=simbroker.host, port=simbroker.port)),
        nats_url=url,
        use_hub=False,
    )
    await connector.start()
    js = nc.jetstream(timeout=5)
    ids = [f"n{i}-{uuid.uuid4().hex[:6]}" for i in range(20)]

    def body(oid: str) -> bytes:
        return json.dumps(
            {"order_id": oid, "account": account, "symbol": "EURUSD", "order_type": "buy", "volume": 0.01}
        ).encode()

    def finished(g: dict[str, list[dict[str, Any]]]) -> set[str]:
        return {u["order_id"] for u in g["order"] if u["state"] in TERMINAL}

    try:
        for oid in ids[:10]:
            await js.publish(subjects.orders_submitted(account, "EURUSD"), body(oid))
        assert await out.until(lambda g: len(finished(g)) >= 2, 15)
        await nats.stop()  # mid-stream: some orders done, others still in the stream
        await asyncio.sleep(0.5)  # the outage itself, not a synchronisation
        await nats.start()
        for oid in ids[10:]:
            await js.publish(subjects.orders_submitted(account, "EURUSD"), body(oid))
        if not await out.until(lambda g: finished(g) >= set(ids), 60):
            missing = set(ids) - finished(out.got)
            journal = connector.journal
            states = {o: journal.get(o).state.value if journal and journal.get(o) else None for o in missing}
            raise AssertionError(f"no terminal OrderUpdate on the bus for {states} (journal states)")
    finally:
        await connector.stop()
        await nc.close()
        await nats.stop()

    terminal = simbroker.terminal()
    assert await terminal.initialize(login=login, password="Nats-pw1", server=server)
    deals = await terminal.history_deals_get(0, 2**31 - 1) or ()
    await terminal.shutdown()
    per_order = {oid: len({d.order for d in deals if d.comment == comment_tag(account, oid)}) for oid in ids}
    assert per_order == dict.fromkeys(ids, 1)
    assert all(u["state"] == "filled" for u in out.got["order"] if u["state"] in TERMINAL)
