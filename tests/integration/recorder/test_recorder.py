"""The recorder as a real process on real NATS and real chDB: executions rows = fills on the bus, exactly,
through a kill -9 in the middle of a run, and a recorder that was down loses none."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.client import Client

from mtrobot.bus import subjects
from mtrobot.bus.connect import connect, provision
from mtrobot.bus.server import EmbeddedNats
from mtrobot.core.events import Fill
from mtrobot.recorder.service import EXECUTIONS_DURABLE

from .helpers import caught_up, executions_rows, spawn_recorder, until

ACCOUNT = "rec1"
FILLS = 2_000


def fill(deal: int) -> Fill:
    return Fill(
        order_id=f"o{deal}", account=ACCOUNT, symbol="EURUSD", side="buy", ticket=deal, deal=deal,
        position=deal, volume=0.01, price=1.1, requested_volume=0.01, remaining_volume=0.0, partial=False,
        retcode=10009, broker_time=datetime(2026, 12, 2, 9, 0, tzinfo=UTC), latency_ms=0.5,
    )  # fmt: skip


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[tuple[str, Client]]:
    """A bus of this test's own: the recorder's consumer position is part of what is under test."""
    nats = EmbeddedNats(tmp_path / "nats")
    url = await nats.start()
    nc = await connect(url, "test-recorder")
    await provision(nc.jetstream(timeout=10))
    yield url, nc
    await nc.close()
    await nats.stop()


async def publish_fills(nc: Client, deals: range, *, twice: bool = False) -> None:
    """Fills as the connector publishes them; ``twice`` also adds copies the stream cannot deduplicate (as a
    replay after the duplicate window would), which must still be one row each."""
    js = nc.jetstream(timeout=10)
    subject = subjects.broker_fill(ACCOUNT, "EURUSD")
    for deal in deals:
        payload = fill(deal).model_dump_json().encode()
        await js.publish_async(subject, payload, headers={"Nats-Msg-Id": f"fill-{ACCOUNT}-{deal}"})
        if twice:
            await js.publish_async(subject, payload)
    await asyncio.wait_for(js.publish_async_completed(), 30)


@pytest.mark.timeout(90)
async def test_executions_equal_the_fills_on_the_bus_after_a_kill_9_mid_run(
    bus: tuple[str, Client], tmp_path: Path
) -> None:
    url, nc = bus
    js = nc.jetstream(timeout=5)
    await publish_fills(nc, range(1, FILLS // 2 + 1), twice=True)  # written while the recorder is down
    data = tmp_path / "rec"
    proc = await spawn_recorder(url, data, "--batch", "50", "--ack-wait", "1")

    async def some_acknowledged() -> bool:
        try:
            info = await js.consumer_info(subjects.FILLS_STREAM, EXECUTIONS_DURABLE)
        except Exception:
            return False
        return info.ack_floor.stream_seq > 0

    try:
        assert await until(some_acknowledged, 60), "the recorder never acknowledged a batch"
        await publish_fills(nc, range(FILLS // 2 + 1, FILLS + 1))
        info = await js.consumer_info(subjects.FILLS_STREAM, EXECUTIONS_DURABLE)
        assert info.num_pending > 0, "the run was over before the kill: nothing is under test"
        proc.send_signal(signal.SIGKILL)  # mid-run: batches written, acknowledged or neither
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    proc = await spawn_recorder(url, data, "--batch", "50", "--ack-wait", "1")
    try:
        assert await until(lambda: caught_up(js), 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    stream = await js.stream_info(subjects.FILLS_STREAM)
    assert stream.state.messages == FILLS + FILLS // 2  # the undeduplicated copies are on the bus too
    deals = [int(r["deal"]) for r in await executions_rows(data / "chdb", ACCOUNT)]
    assert sorted(deals) == list(range(1, FILLS + 1))  # every deal once: none lost, none twice


@pytest.mark.timeout(90)
async def test_a_batch_written_but_not_acknowledged_is_not_written_again(
    bus: tuple[str, Client], tmp_path: Path
) -> None:
    """The exact window exactly-once is about: the insert done, the process SIGKILLed before its ack."""
    url, nc = bus
    js = nc.jetstream(timeout=5)
    await publish_fills(nc, range(1, 101))
    data = tmp_path / "rec"
    proc = await spawn_recorder(
        url, data, "--batch", "40", "--ack-wait", "1", failpoints="recorder_after_insert:1"
    )
    assert await asyncio.wait_for(proc.wait(), 60) == -signal.SIGKILL
    info = await js.consumer_info(subjects.FILLS_STREAM, EXECUTIONS_DURABLE)
    assert info.ack_floor.stream_seq == 0  # written into executions, never acknowledged
    proc = await spawn_recorder(url, data, "--batch", "40", "--ack-wait", "1")
    try:
        assert await until(lambda: caught_up(js), 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    deals = [int(r["deal"]) for r in await executions_rows(data / "chdb", ACCOUNT)]
    assert sorted(deals) == list(range(1, 101))


@pytest.mark.timeout(90)
@pytest.mark.parametrize("batch", [1, 2])
async def test_batches_of_one_and_two_record_every_fill(
    bus: tuple[str, Client], tmp_path: Path, batch: int
) -> None:
    """The smallest batches the command takes: a fill fetched alone, and a first fill and the rest."""
    url, nc = bus
    js = nc.jetstream(timeout=5)
    await publish_fills(nc, range(1, 6))
    data = tmp_path / "rec"
    proc = await spawn_recorder(url, data, "--batch", str(batch))
    try:
        assert await until(lambda: caught_up(js), 60), (data / "recorder.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    deals = [int(r["deal"]) for r in await executions_rows(data / "chdb", ACCOUNT)]
    assert sorted(deals) == [1, 2, 3, 4, 5]
