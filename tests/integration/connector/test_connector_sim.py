"""The connector in-process against the real TCP simbroker, real NATS and real chDB.

Covers the validation checklist (each item a test), every order action, and the faults: a connection
dropped mid-order, a requote storm, a maintenance window. NATS restarts and crashes have their own files.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from pydantic import SecretStr

from mtrobot.broker import constants as mt5
from mtrobot.broker.backends import open_terminal
from mtrobot.bus import subjects
from mtrobot.connector.backoff import Backoff
from mtrobot.connector.options import ConnectorOptions
from mtrobot.connector.service import Connector, ConnectorParts
from mtrobot.core.ids import comment_tag
from mtrobot.recorder.service import Recorder
from mtrobot.settings import Settings

from .simfixtures import SimBrokerProcess
from .test_connector_bus import Outputs

PASSWORD = "Sim-pass1"


@dataclass
class Rig:
    connector: Connector
    out: Outputs
    sim: SimBrokerProcess
    admin: Any
    server: str
    login: int
    nc: Client

    @property
    def account(self) -> str:
        return self.connector.account

    async def submit(self, **fields: Any) -> str:
        oid = fields.pop("order_id", None) or "t" + uuid.uuid4().hex[:10]
        body = {
            "order_id": oid,
            "account": self.account,
            "symbol": "EURUSD",
            "order_type": "buy",
            "volume": 0.01,
        } | fields
        await self.nc.jetstream().publish(
            subjects.orders_submitted(self.account, body["symbol"]), json.dumps(body).encode()
        )
        return oid

    def states(self, oid: str) -> list[str]:
        return [u["state"] for u in self.out.got["order"] if u["order_id"] == oid]

    async def final(self, oid: str, timeout: float = 15.0) -> str:
        terminal = {"filled", "rejected", "cancelled", "expired", "duplicate", "accepted"}
        assert await self.out.until(lambda g: bool(set(self.states(oid)) & terminal), timeout), self.states(
            oid
        )
        return [s for s in self.states(oid) if s in terminal][-1]

    def errors(self, oid: str) -> list[dict[str, Any]]:
        return [e for e in self.out.got["error"] if e["order_id"] == oid]

    def fills(self, oid: str) -> list[dict[str, Any]]:
        return [f for f in self.out.got["fill"] if f["order_id"] == oid]

    async def executions_at_broker(self, oid: str) -> int:
        terminal = self.sim.terminal()
        assert await terminal.initialize(login=self.login, password=PASSWORD, server=self.server)
        deals = await terminal.history_deals_get(0, 2**31 - 1) or ()
        await terminal.shutdown()
        tag = comment_tag(self.account, oid)
        return len({d.order for d in deals if d.comment == tag and d.type in (0, 1)})


@pytest.fixture
async def rig(
    nats_url: str,
    nc: Client,
    tmp_path: Path,
    simbroker: SimBrokerProcess,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Rig]:
    admin = simbroker.admin()
    server = simbroker.servers[0]
    await admin.reset_faults(server=server)
    login = await admin.create_account(
        server=server, password=PASSWORD, investor_password="Sim-inv1", balance=100_000.0
    )
    account = "sim-" + uuid.uuid4().hex[:8]
    out = Outputs()
    await out.subscribe(nc, account)
    options = ConnectorOptions(
        login=login,
        server=server,
        retry_backoff=Backoff(0.01, 0.05),
        reconnect_backoff=Backoff(0.05, 0.4),
        pending_poll_s=0.2,
        keepalive_s=1.0,
        unknown_settle_s=2.0,
        max_retries=3,
        send_timeout_s=3.0,
    )

    def factory() -> Any:
        return open_terminal("sim", host=simbroker.host, port=simbroker.port)

    connector = Connector(
        account,
        Settings(data_dir=tmp_path / "data"),
        SecretStr(PASSWORD),
        options,
        ConnectorParts(factory),
        nats_url=nats_url,
        use_hub=False,
    )
    await connector.start()
    assert await connector.session.wait_ready(10)
    yield Rig(connector, out, simbroker, admin, server, login, nc)
    await connector.stop()
    await admin.reset_faults(server=server)


# -- the happy path and every action ---------------------------------------------------------------


async def test_a_market_order_fills_with_a_fill_an_execution_row_and_an_audit_trail(
    rig: Rig, recorder: Recorder
) -> None:
    oid = await rig.submit()
    assert await rig.final(oid) == "filled"
    assert rig.states(oid) == ["received", "validated", "sent", "filled"]
    [fill] = rig.fills(oid)
    assert fill["volume"] == 0.01 and fill["side"] == "buy" and fill["deal"] > 0
    assert await rig.out.until(lambda g: recorder.executions.count(rig.account, oid) == 1)
    assert await rig.executions_at_broker(oid) == 1


async def test_sell_with_sl_and_tp_then_modify_then_partial_close_then_close(rig: Rig) -> None:
    opened = await rig.submit(order_type="sell", volume=0.05)
    assert await rig.final(opened) == "filled"
    position = rig.fills(opened)[0]["position"]
    price = rig.fills(opened)[0]["price"]
    modify = await rig.submit(
        action="modify",
        position=position,
        sl=round(price + 0.01, 5),
        tp=round(price - 0.01, 5),
        order_type=None,
        volume=None,
    )
    assert await rig.final(modify) == "filled"
    part = await rig.submit(action="close", position=position, volume=0.02, order_type=None)
    assert await rig.final(part) == "filled" and rig.fills(part)[0]["volume"] == 0.02
    rest = await rig.submit(action="close", position=position, order_type=None, volume=None)
    assert await rig.final(rest) == "filled" and rig.fills(rest)[0]["volume"] == 0.03
    again = await rig.submit(action="close", position=position, order_type=None, volume=None)
    assert await rig.final(again) == "rejected"


async def test_a_pending_order_is_accepted_modified_and_cancelled(rig: Rig) -> None:
    tick = rig.fills(await _filled(rig))[0]["price"]
    placed = await rig.submit(order_type="buy_limit", price=round(tick - 0.01, 5))
    assert await rig.final(placed) == "accepted"
    ticket = [u for u in rig.out.got["order"] if u["order_id"] == placed][-1]["ticket"]
    moved = await rig.submit(
        action="modify", ticket=ticket, price=round(tick - 0.02, 5), order_type=None, volume=None
    )
    assert await rig.final(moved) == "filled"
    cancel = await rig.submit(action="cancel", ticket=ticket, order_type=None, volume=None)
    assert await rig.final(cancel) == "cancelled"
    assert await rig.out.until(lambda g: rig.states(placed)[-1:] == ["cancelled"], 10)


async def test_a_pending_order_that_triggers_ends_filled_with_its_fill(rig: Rig) -> None:
    tick = rig.fills(await _filled(rig))[0]["price"]
    placed = await rig.submit(order_type="buy_stop", price=round(tick + 0.002, 5))
    assert await rig.final(placed) == "accepted"
    await rig.admin.set_quote(server=rig.server, symbol="EURUSD", bid=round(tick + 0.004, 5))
    assert await rig.out.until(lambda g: rig.states(placed)[-1:] == ["filled"], 15), rig.states(placed)
    assert len(rig.fills(placed)) == 1


async def _filled(rig: Rig) -> str:
    oid = await rig.submit()
    assert await rig.final(oid) == "filled"
    return oid


# -- the validation checklist ---------------------------------------------------------------------


async def _refused(rig: Rig, **fields: Any) -> dict[str, Any]:
    oid = await rig.submit(**fields)
    assert await rig.final(oid) == "rejected"
    [error] = rig.errors(oid)
    assert error["category"] == "validation" and error["message"]
    assert await rig.executions_at_broker(oid) == 0
    return error


async def test_checklist_unknown_fields_are_named(rig: Rig) -> None:
    assert "'lots'" in (await _refused(rig, lots=1))["message"]


async def test_checklist_missing_fields_are_named(rig: Rig) -> None:
    assert "volume" in (await _refused(rig, volume=None))["message"]


async def test_checklist_volume_below_the_minimum(rig: Rig) -> None:
    assert (await _refused(rig, volume=0.001))["retcode_name"] == "TRADE_RETCODE_INVALID_VOLUME"


async def test_checklist_volume_above_the_maximum(rig: Rig) -> None:
    assert (await _refused(rig, volume=100_000.0))["retcode"] == 10014


async def test_checklist_volume_not_on_the_step(rig: Rig) -> None:
    assert "step" in (await _refused(rig, volume=0.015))["message"]


async def test_checklist_stops_closer_than_the_stops_level(rig: Rig) -> None:
    price = rig.fills(await _filled(rig))[0]["price"]
    assert (await _refused(rig, sl=round(price - 0.00001, 5)))["retcode"] == 10016


async def test_checklist_symbol_trade_mode_close_only(rig: Rig) -> None:
    await rig.admin.update_symbol(
        server=rig.server, symbol="GBPUSD", trade_mode=mt5.SYMBOL_TRADE_MODE_CLOSEONLY
    )
    try:
        assert (await _refused(rig, symbol="GBPUSD"))["retcode"] == 10044
    finally:
        await rig.admin.update_symbol(
            server=rig.server, symbol="GBPUSD", trade_mode=mt5.SYMBOL_TRADE_MODE_FULL
        )


async def test_checklist_market_hours(rig: Rig) -> None:
    from datetime import time

    from mtrobot.connector.validation import TradingSession

    closed = TradingSession(frozenset(), time(0), time(0))
    rig.connector.options.replace(
        rig.connector.options.current.with_changes(market_sessions={"EURUSD": (closed,)})
    )
    assert (await _refused(rig))["retcode_name"] == "TRADE_RETCODE_MARKET_CLOSED"


async def test_checklist_unknown_symbol(rig: Rig) -> None:
    assert "does not offer" in (await _refused(rig, symbol="NOPE"))["message"]


async def test_checklist_order_check_refuses_what_the_margin_cannot_carry(rig: Rig) -> None:
    await rig.admin.balance_operation(login=rig.login, amount=-99_500.0)  # 500 left: 1 lot needs ~1100
    error = await _refused(rig, volume=1.0)
    assert error["retcode_name"] == "TRADE_RETCODE_NO_MONEY"


async def test_checklist_a_repeated_order_id_is_a_duplicate_and_not_sent(rig: Rig) -> None:
    oid = await _filled(rig)
    await rig.submit(order_id=oid)
    assert await rig.out.until(lambda g: rig.states(oid)[-1:] == ["duplicate"])
    assert await rig.executions_at_broker(oid) == 1


# -- faults ---------------------------------------------------------------------------------------


async def test_a_connection_dropped_mid_order_is_looked_up_and_not_sent_twice(rig: Rig) -> None:
    await rig.admin.lose_replies(server=rig.server, n=1, mode="drop")
    oid = await rig.submit()
    assert await rig.final(oid, 20) == "filled"
    assert await rig.executions_at_broker(oid) == 1
    assert len(rig.fills(oid)) == 1
    entry = rig.connector.journal.get(oid) if rig.connector.journal else None
    assert entry is not None and entry.attempts == 1  # found by the lookup, never sent again
    assert await rig.connector.session.wait_ready(10)  # the session came back by itself


async def test_an_answer_that_never_comes_is_looked_up_and_not_sent_twice(rig: Rig) -> None:
    await rig.admin.lose_replies(server=rig.server, n=1, mode="timeout")
    oid = await rig.submit()
    assert await rig.final(oid, 30) == "filled"
    assert await rig.executions_at_broker(oid) == 1
    entry = rig.connector.journal.get(oid) if rig.connector.journal else None
    assert entry is not None and entry.attempts == 1


async def test_a_requote_storm_is_ridden_out_without_duplicates(rig: Rig) -> None:
    await rig.admin.requote_next(server=rig.server, n=3)
    oid = await rig.submit()
    assert await rig.final(oid) == "filled"
    assert await rig.executions_at_broker(oid) == 1
    await rig.admin.requote_next(server=rig.server, n=50)
    lost = await rig.submit()
    assert await rig.final(lost) == "rejected"
    [error] = rig.errors(lost)
    assert error["category"] == "retriable" and error["attempts"] == 4
    assert await rig.executions_at_broker(lost) == 0


async def test_a_dropped_session_reconnects_within_the_backoff_schedule(rig: Rig) -> None:
    session = rig.connector.session
    before = session.connects
    await rig.admin.drop_connections(server=rig.server)
    assert await rig.out.until(lambda g: session.connects > before, 10)
    schedule = rig.connector.options.current.reconnect_backoff
    assert all(d <= schedule.cap for d in session.backoff_delays)
    assert session.last_reconnect_s is not None and session.last_reconnect_s < 1.0 + schedule.cap
    reconciler = rig.connector.reconciler
    assert await rig.out.until(lambda g: reconciler.last_report is not None
                               and reconciler.last_report.trigger == "reconnect", 10)  # fmt: skip
    oid = await rig.submit()
    assert await rig.final(oid) == "filled"


async def test_an_order_during_a_maintenance_window_waits_and_fills_once_after_it(rig: Rig) -> None:
    await rig.admin.start_maintenance(server=rig.server, seconds=2.0)
    assert await rig.out.until(lambda g: not rig.connector.session.ready, 5)
    oid = await rig.submit()
    assert await rig.final(oid, 30) == "filled"
    assert await rig.executions_at_broker(oid) == 1
    assert rig.connector.session.failed_logins >= 1  # logins were refused during the window


async def test_reconciliation_reports_positions_closed_and_opened_outside_the_platform(rig: Rig) -> None:
    oid = await _filled(rig)
    position = rig.fills(oid)[0]["position"]
    outside = rig.sim.terminal()
    assert await outside.initialize(login=rig.login, password=PASSWORD, server=rig.server)
    tick = await outside.symbol_info_tick("EURUSD")
    await outside.order_send(
        {
            "action": mt5.TRADE_ACTION_DEAL,
            "symbol": "EURUSD",
            "volume": 0.01,
            "type": mt5.ORDER_TYPE_SELL,
            "price": tick.bid,
            "deviation": 50,
            "type_filling": mt5.ORDER_FILLING_FOK,
            "magic": 0,
        }
    )
    await outside.order_send(
        {
            "action": mt5.TRADE_ACTION_DEAL,
            "symbol": "EURUSD",
            "volume": 0.01,
            "type": mt5.ORDER_TYPE_SELL,
            "position": position,
            "price": tick.bid,
            "deviation": 50,
            "type_filling": mt5.ORDER_FILLING_FOK,
        }
    )
    await outside.shutdown()
    reports: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        reports.append(json.loads(msg.data))

    await rig.nc.subscribe(subjects.reconciliation_report(rig.account), cb=collect)
    report = await rig.connector.reconciler.reconcile("test")
    assert report is not None
    kinds = {d.kind for d in report.differences}
    assert {"missing", "outside_platform"} <= kinds
    assert await rig.out.until(lambda g: bool(reports), 5)


async def test_checklist_a_pending_price_on_the_wrong_side_of_the_market(rig: Rig) -> None:
    price = rig.fills(await _filled(rig))[0]["price"]
    error = await _refused(rig, order_type="buy_limit", price=round(price + 0.01, 5))
    assert error["retcode_name"] == "TRADE_RETCODE_INVALID_PRICE" and "below" in error["message"]


async def test_every_broker_call_is_mirrored_to_kafka_by_the_recorder_when_configured(
    nats_url: str,
    nc: Client,
    tmp_path: Path,
    simbroker: SimBrokerProcess,
    kafka_bootstrap: str,
    chdb_store: Any,
) -> None:
    from aiokafka import AIOKafkaConsumer

    from mtrobot.recorder.kafka import AUDIT_TOPIC, KafkaAuditMirror

    admin = simbroker.admin()
    server = simbroker.servers[0]
    login = await admin.create_account(server=server, password=PASSWORD, investor_password="Sim-inv1")
    account = "kafka-" + uuid.uuid4().hex[:6]
    out = Outputs()
    await out.subscribe(nc, account)
    connector = Connector(
        account,
        Settings(data_dir=tmp_path / "data"),
        SecretStr(PASSWORD),
        ConnectorOptions(login=login, server=server),
        ConnectorParts(lambda: open_terminal("sim", host=simbroker.host, port=simbroker.port)),
        nats_url=nats_url,
        use_hub=False,
    )
    recorder = Recorder(Settings(data_dir=tmp_path / "rec"), nats_url=nats_url, executions=chdb_store,
                        kafka=KafkaAuditMirror(kafka_bootstrap))  # fmt: skip
    await connector.start()
    await recorder.start()
    try:
        oid = "k" + uuid.uuid4().hex[:8]
        body = {"order_id": oid, "account": account, "symbol": "EURUSD", "order_type": "buy", "volume": 0.01}
        await nc.jetstream().publish(subjects.orders_submitted(account, "EURUSD"), json.dumps(body).encode())
        assert await out.until(lambda g: any(f["order_id"] == oid for f in g["fill"]), 15)
        assert await out.until(lambda g: connector.audit.backlog()["jetstream"] == 0, 30)
        info = nc.jetstream()

        async def mirrored() -> bool:
            consumer = await info.consumer_info(subjects.AUDIT_STREAM, "recorder_kafka")
            return consumer.num_pending == 0 and consumer.num_ack_pending == 0

        assert await _until_async(mirrored, 30)
    finally:
        await recorder.stop()
        await connector.stop()
    consumer = AIOKafkaConsumer(AUDIT_TOPIC, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000, max_records=100_000)
    finally:
        await consumer.stop()
    records = [json.loads(r.value) for rs in batch.values() for r in rs]
    mine = [r for r in records if r["account"] == account]
    sends = [r for r in mine if r["operation"] == "order_send" and r["order_id"] == oid]
    assert len(sends) == 1 and sends[0]["retcode"] == 10009
    assert PASSWORD not in json.dumps(records)


async def _until_async(predicate: Any, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_partial_fill_gives_one_fill_per_deal_and_ends_cancelled_for_the_rest(rig: Rig) -> None:
    oid = await rig.submit(symbol="XAUUSD", volume=12.0, filling="ioc")  # the broker has 10 lots of liquidity
    assert await rig.out.until(lambda g: rig.states(oid)[-1:] == ["cancelled"], 15), rig.states(oid)
    assert rig.states(oid) == ["received", "validated", "sent", "partially_filled", "cancelled"]
    [fill] = rig.fills(oid)
    assert fill["volume"] == 10.0 and fill["partial"] is True and fill["remaining_volume"] == 2.0
    final = [u for u in rig.out.got["order"] if u["order_id"] == oid][-1]
    assert final["filled_volume"] == 10.0


async def test_the_keepalive_holds_the_session_inside_the_brokers_inactivity_timeout(rig: Rig) -> None:
    await rig.admin.update_server(server=rig.server, inactivity_timeout_s=2.5)  # keepalive is every 1 s here
    try:
        await rig.connector.session.wait_ready(5)
        connects, failures = rig.connector.session.connects, rig.connector.link.failures
        await asyncio.sleep(6.0)  # idle for more than twice the broker's limit: the duration under test
        oid = await rig.submit()
        assert await rig.final(oid) == "filled"
        # Had the broker dropped us for inactivity, the order's first call would have failed and reconnected.
        assert rig.connector.session.connects == connects and rig.connector.link.failures == failures
    finally:
        await rig.admin.update_server(server=rig.server, inactivity_timeout_s=30.0)
