"""``PullTaker`` on a real nats-server: a message is handed over as it comes, a backlog in one call."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mtrobot.bus.pull import PullTaker


@pytest.fixture
async def stream(nc: Any) -> AsyncIterator[tuple[Any, str]]:
    js = nc.jetstream(timeout=5)
    name = f"PULLTEST_{uuid.uuid4().hex[:8]}"
    await js.add_stream(name=name, subjects=[f"{name.lower()}.>"])
    yield js, name
    await js.delete_stream(name)


async def _consumer(js: Any, subject: str) -> PullTaker:
    return PullTaker(await js.pull_subscribe(subject, durable=f"c{uuid.uuid4().hex[:8]}"))


async def _publish_at(js: Any, subject: str, at: float, data: bytes) -> float:
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    await js.publish(subject, data)
    return time.monotonic()


async def test_a_message_after_an_idle_fetch_and_a_served_one_is_handed_over_as_it_comes(stream) -> None:
    """The shape of an idle connector that gets two orders in a second: nats-py's own ``fetch(8)`` held
    the second until the first fetch's request expired (~1.6 s of its 2 s here; in 3 of 4 tries of this
    sequence with 1 s fetches, ~0.6 s); ``PullTaker`` must hand every one over at once."""
    js, name = stream
    for attempt in range(3):  # the upstream wait depends on which status reaches the client first
        subject = f"{name.lower()}.t{attempt}"
        pull = await _consumer(js, subject)
        with pytest.raises(TimeoutError):
            await pull.take(8, timeout=0.3)  # idle: its expiry's 408 comes after we gave up
        start = time.monotonic()
        first = asyncio.create_task(_publish_at(js, subject, start + 0.2, b"1"))
        got = await pull.take(8, timeout=2.0)
        await first
        assert [m.data for m in got] == [b"1"]
        await got[0].ack()
        second = asyncio.create_task(_publish_at(js, subject, start + 0.4, b"2"))
        await asyncio.sleep(max(0.0, start + 0.3 - time.monotonic()))  # the next fetch, before it comes
        got = await pull.take(8, timeout=2.0)
        handed_over = time.monotonic()
        published = await second
        assert [m.data for m in got] == [b"2"]
        assert handed_over - published < 0.5, f"held {handed_over - published:.3f} s"  # nats-py: ~1.6 s
        await got[0].ack()
        await pull.pull.unsubscribe()


async def test_what_waits_in_the_stream_comes_in_one_call_up_to_the_batch_in_order(stream) -> None:
    js, name = stream
    subject = f"{name.lower()}.x"
    pull = await _consumer(js, subject)
    for i in range(12):
        await js.publish(subject, str(i).encode())
    batches = [await pull.take(5, timeout=2.0) for _ in range(3)]
    assert [[int(m.data) for m in batch] for batch in batches] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    await js.publish(subject, b"12")  # caught up: the next one is waited for, and comes alone
    assert [int(m.data) for m in await pull.take(5, timeout=2.0)] == [12]
    alone = await _consumer(js, subject)
    assert [int(m.data) for m in await alone.take(1, timeout=2.0)] == [0]  # a batch of one


async def test_nothing_in_the_stream_is_a_timeout(stream) -> None:
    js, name = stream
    pull = await _consumer(js, f"{name.lower()}.x")
    with pytest.raises(TimeoutError):
        await pull.take(8, timeout=0.2)
