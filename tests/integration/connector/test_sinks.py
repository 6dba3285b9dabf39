"""The executions table in real chDB, and the audit trail into real JetStream and a real Kafka (Tansu)."""

from __future__ import annotations

import asyncio
import gc
import json
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from nats.aio.client import Client
from nats.errors import MaxPayloadError

from mtrobot.bus import subjects
from mtrobot.connector.audit import AuditTrail, publish_batch
from mtrobot.core.events import Fill
from mtrobot.recorder.executions import Executions
from mtrobot.recorder.kafka import AUDIT_TOPIC, KafkaAuditMirror


def _fill(account: str, deal: int) -> Fill:
    return Fill(
        order_id="o1",
        account=account,
        symbol="EURUSD",
        side="buy",
        ticket=7,
        deal=deal,
        position=7,
        volume=0.1,
        price=1.1,
        requested_volume=0.1,
        remaining_volume=0.0,
        partial=False,
        retcode=10009,
        broker_time=datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
        latency_ms=3.5,
    )


def test_a_fill_written_twice_is_one_row_in_the_executions_table(chdb_store: Executions) -> None:
    assert chdb_store.insert(_fill("sinks1", 1001)) is True
    assert chdb_store.insert(_fill("sinks1", 1001)) is False
    assert chdb_store.insert(_fill("sinks1", 1002)) is True
    rows = chdb_store.rows("sinks1")
    assert [r["deal"] for r in rows] == [1001, 1002]
    assert rows[0]["order_id"] == "o1" and rows[0]["latency_ms"] == 3.5
    assert chdb_store.count("sinks1", "o1") == 2
    assert chdb_store.insert_many([_fill("sinks1", d) for d in (1002, 1003, 1003, 1004)]) == 2
    assert chdb_store.count("sinks1") == 4


async def _until(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_audit_records_reach_jetstream_without_secrets(nc: Client, tmp_path: Path) -> None:
    js = nc.jetstream()

    async def to_js(key: str, payload: bytes, subject: str) -> None:
        await js.publish(subject, payload, timeout=5, headers={"Nats-Msg-Id": key})

    trail = AuditTrail("audit1", tmp_path / "spool", {"jetstream": to_js})
    trail.start()
    trail.record("login", request={"login": 5, "password": "hunter2", "server": "Sim-Demo"}, retcode=1)
    trail.record("order_send", order_id="o-77", request={"symbol": "EURUSD"}, retcode=10009, latency_ms=2)
    sub = await js.subscribe(subjects.audit_broker("audit1"), ordered_consumer=True)
    got = [json.loads((await sub.next_msg(timeout=10)).data) for _ in range(2)]
    await trail.stop()
    assert [g["operation"] for g in got] == ["login", "order_send"]
    assert got[0]["request"]["password"] == "[REDACTED]" and "hunter2" not in json.dumps(got)
    assert got[1]["order_id"] == "o-77"


async def test_audit_spools_while_the_sink_is_down_and_replays_when_it_returns(tmp_path: Path) -> None:
    delivered: list[bytes] = []
    up = asyncio.Event()

    async def flaky(key: str, payload: bytes, subject: str) -> None:
        if not up.is_set():
            raise ConnectionError("sink down")
        delivered.append(payload)

    trail = AuditTrail("audit2", tmp_path / "spool", {"sink": flaky})
    trail.start()
    for i in range(20):
        trail.record("positions_get", request={"i": i})  # never blocks although the sink is down
    assert trail.backlog()["sink"] > 0
    up.set()

    async def all_there() -> bool:
        return len(delivered) == 20

    assert await _until(all_there, 15)
    await trail.stop()
    assert [json.loads(p)["request"]["i"] for p in delivered] == list(range(20))


async def test_the_kafka_mirror_delivers_audit_records_to_the_topic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    mirror = KafkaAuditMirror(kafka_bootstrap)

    async def to_kafka(key: str, payload: bytes, subject: str) -> None:
        if not mirror.started:
            await mirror.start()
        await mirror.send("kaf1", payload)

    trail = AuditTrail("kaf1", tmp_path / "spool", {"kafka": to_kafka})
    trail.start()
    trail.record("order_send", order_id="k-1", request={"password": "x"}, retcode=10009)
    trail.record("order_check", order_id="k-2", retcode=0)

    async def delivered() -> bool:
        return trail.backlog()["kafka"] == 0

    assert await _until(delivered, 30)
    await trail.stop()
    consumer = AIOKafkaConsumer(
        AUDIT_TOPIC, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10000, max_records=10)
        values = [json.loads(r.value) for records in batch.values() for r in records]
    finally:
        await consumer.stop()
        await mirror.stop()
    assert [v["order_id"] for v in values] == ["k-1", "k-2"]
    assert values[0]["request"]["password"] == "[REDACTED]"


async def test_a_batch_that_fails_partway_leaves_no_ack_behind(nc: Client) -> None:
    """An audit batch whose second publish raises (here: over the server's payload limit) must not leave the
    first one's ack pending: its later error answer (no stream listens on this subject, so the server answers
    "no responders") would be logged as never retrieved. (nats-py itself keeps the failed publish's own ack
    registered, holding one slot of its publish window; that one we are never handed.)"""
    loop = asyncio.get_running_loop()
    unhandled: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(str(context.get("message"))))
    try:
        js = nc.jetstream()
        subject = "tests.sinks.no_stream_here"
        batch = [("k1", b"{}", subject), ("k2", b"x" * (nc.max_payload + 1), subject)]
        failed = False
        try:
            await publish_batch(js, batch, timeout_s=5)
        except MaxPayloadError:
            failed = True  # the traceback (and the frame holding the acks) is dropped here
        assert failed
        await nc.flush(timeout=5)  # the server has answered the first publish by its PONG
        await asyncio.sleep(0)  # ... and the client's reader has handed that answer on
        gc.collect()
        assert [m for m in unhandled if "never retrieved" in m] == []
    finally:
        loop.set_exception_handler(previous)
