"""A dropped broker session leaves no Future whose exception nobody retrieves (asyncio logs each one as
"Future exception was never retrieved" when it is collected).

The sim client's race: a call starts after the peer's FIN was read (the transport is closing) but before the
client's reader task has run. The call registers its future, ``drain()`` yields, the reader task ends and
fails every waiting future with ReplyLost, then ``drain()`` raises and the call gave up on a future that now
held an exception. One per call that starts in that window; a platform with many calls in flight on many
sessions logged them by the hundred when the simulator went away."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mtrobot.broker.simclient import LinkError, TcpTransport
from mtrobot.broker.simproto import PROTOCOL_VERSION
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.clock import VirtualClock
from mtrobot.sim.tcp import SimServer
from tests.integration.connector.simfixtures import SimBrokerProcess, running_simbroker

NEVER_RETRIEVED = "exception was never retrieved"


@pytest.fixture
async def unretrieved() -> AsyncIterator[Callable[[], list[str]]]:
    """What the loop's exception handler was told, after the garbage collector has found every orphan."""
    loop = asyncio.get_running_loop()
    seen: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(str(context.get("message"))))

    def collected() -> list[str]:
        gc.collect()
        return [message for message in seen if NEVER_RETRIEVED in message]

    yield collected
    loop.set_exception_handler(previous)


@pytest.fixture
async def sim_server() -> AsyncIterator[SimServer]:
    server = SimServer(SimBroker(clock=VirtualClock(dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC))))
    await server.start()
    yield server
    await server.stop()


async def test_a_call_starting_as_the_peer_closes_leaves_no_unretrieved_future(
    sim_server: SimServer, unretrieved: Callable[[], list[str]]
) -> None:
    failures = 0
    for n in range(50):
        transport = TcpTransport("127.0.0.1", sim_server.port)
        await transport.connect(5)
        reader, writer = transport._reader, transport._writer
        assert reader is not None and writer is not None
        # What asyncio's stream protocol does when it reads the peer's FIN: end of data, transport closing.
        # The reader task only runs after the call below has started.
        reader.feed_eof()
        writer.transport.close()
        message: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": n + 1, "t": "call", "op": "version"}
        with pytest.raises(LinkError):
            await transport.request(message, 5)
        failures += 1
        await transport.close()
    assert failures == 50
    assert unretrieved() == []


async def test_killing_the_simulator_under_many_calls_in_flight_leaves_no_unretrieved_future(
    tmp_path: Path, unretrieved: Callable[[], list[str]]
) -> None:
    with running_simbroker(tmp_path) as (process, simbroker):
        await _poll_until_killed(process, simbroker)
    assert unretrieved() == []


async def _poll_until_killed(process: subprocess.Popen[bytes], simbroker: SimBrokerProcess) -> None:
    server = simbroker.servers[0]
    login = await simbroker.admin().create_account(
        server=server, password="Master-pass-1", investor_password="Investor-pass-1"
    )
    terminals = [simbroker.terminal() for _ in range(20)]
    for terminal in terminals:
        assert await terminal.initialize(login=login, password="Master-pass-1", server=server)
    answered = [0]
    dropped = asyncio.Event()

    async def poll(terminal: Any) -> int:  # a robot's market poll: call after call on the same session
        failed = 0
        while failed < 3:
            if await terminal.symbol_info_tick("EURUSD") is None:
                failed += 1
            else:
                answered[0] += 1
                if answered[0] == 2_000:
                    dropped.set()
        return failed

    polls = [asyncio.create_task(poll(terminal)) for terminal in terminals for _ in range(5)]
    await asyncio.wait_for(dropped.wait(), 60)
    process.kill()  # SIGKILL: the broker goes away mid-call, without a farewell
    assert await asyncio.wait_for(asyncio.gather(*polls), 30) == [3] * len(polls)
    for terminal in terminals:
        await terminal.shutdown()
