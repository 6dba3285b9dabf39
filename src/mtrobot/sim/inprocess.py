"""Backend ``"sim-inprocess"``: the sim terminal wired straight to a :class:`SimBroker` in this process.

Frames are still encoded and decoded, and go through the same :class:`~mtrobot.sim.connection.Connection`
as TCP ones, so unit tests and backtests exercise exactly the code a TCP client does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mtrobot.broker.simclient import NotSent, ReplyLost, ReplyTimeout, SimTerminal
from mtrobot.broker.simproto import pack_frame, unpack_body
from mtrobot.sim.broker import AdminApi, SimBroker
from mtrobot.sim.connection import Connection


class InProcessTransport:
    def __init__(self, broker: SimBroker) -> None:
        self._broker = broker
        self._connection: Connection | None = None

    @property
    def closed(self) -> bool:
        return self._connection is None or self._connection.closed

    async def connect(self, timeout: float) -> None:
        self._connection = Connection(self._broker, AdminApi(self._broker))

    async def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        connection = self._connection
        if connection is None or connection.closed:
            raise NotSent("not connected")
        frame = pack_frame(message)
        answer = await connection.handle(frame[4:])
        if answer.unprocessed:
            raise NotSent("connection closed")
        if answer.frame is None:
            if answer.close:
                raise ReplyLost("connection dropped")
            await asyncio.sleep(timeout)
            raise ReplyTimeout("no answer")
        return unpack_body(answer.frame[4:])

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.shutdown()


def open_inprocess_terminal(broker: SimBroker | None = None, **options: Any) -> SimTerminal:
    """A terminal on ``broker`` (a fresh default broker if none is given) in this process."""
    target = broker if broker is not None else SimBroker()
    return SimTerminal(lambda: InProcessTransport(target), **options)
