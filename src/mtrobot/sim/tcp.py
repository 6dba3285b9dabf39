"""The simulated broker served over TCP (loopback by default): one :class:`Connection` per client, an idle
watchdog (MT5 servers drop a terminal that sends nothing for 30 s), and a ticker that keeps real-time
prices moving between requests."""

from __future__ import annotations

import asyncio
import contextlib

from mtrobot.broker.simproto import HEADER, MAX_REQUEST_FRAME, PROTOCOL_VERSION, pack_frame
from mtrobot.logging import get_logger
from mtrobot.sim.broker import AdminApi, SimBroker
from mtrobot.sim.connection import Connection

log = get_logger(__name__)

WATCHDOG_PERIOD_S = 0.25


def _farewell(writer: asyncio.StreamWriter) -> None:
    """Tell the client the server is closing the session (so its next call fails as never sent, -10004,
    rather than as a lost answer), then close. Any request still on its way was not processed."""
    gone = {"v": PROTOCOL_VERSION, "id": 0, "r": None, "e": [-10004, "No IPC connection"], "gone": True}
    with contextlib.suppress(Exception):
        writer.write(pack_frame(gone))
    writer.close()


class SimServer:
    def __init__(
        self,
        broker: SimBroker,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        admin_token: str | None = None,
        tick_period_s: float | None = 1.0,
    ) -> None:
        self.broker = broker
        self.admin = AdminApi(broker)
        self._host, self._port = host, port
        self._admin_token = admin_token
        self._tick_period = tick_period_s
        self._server: asyncio.Server | None = None
        self._connections: dict[Connection, asyncio.StreamWriter] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def host(self) -> str:
        return self._host

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, limit=MAX_REQUEST_FRAME
        )
        self._tasks.append(asyncio.create_task(self._watchdog(), name="simbroker-watchdog"))
        if self._tick_period:
            self._tasks.append(asyncio.create_task(self._ticker(self._tick_period), name="simbroker-ticker"))
        log.info("simbroker listening", host=self._host, port=self.port, servers=list(self.broker.servers))
        return self.port

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            self._server.close()
        for connection, writer in list(self._connections.items()):
            connection.shutdown()
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(self.broker, self.admin, self._admin_token)
        connection.on_drop.append(lambda: _farewell(writer))
        self._connections[connection] = writer
        try:
            while not connection.closed:
                size = HEADER.unpack(await reader.readexactly(HEADER.size))[0]
                if size > MAX_REQUEST_FRAME:
                    writer.write(
                        pack_frame(
                            {
                                "v": PROTOCOL_VERSION,
                                "id": 0,
                                "r": None,
                                "e": [-2, "Terminal: Invalid params (frame too large)"],
                            }
                        )
                    )
                    break
                answer = await connection.handle(await reader.readexactly(size))
                if answer.frame is not None:
                    writer.write(answer.frame)
                    await writer.drain()
                if answer.close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            log.exception("simbroker: connection failed")
        finally:
            connection.shutdown()
            self._connections.pop(connection, None)
            writer.close()

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_PERIOD_S)
            for connection, writer in list(self._connections.items()):
                if connection.idle_expired():
                    log.info("simbroker: inactivity disconnect")
                    connection.shutdown()
                    _farewell(writer)

    async def _ticker(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                self.broker.sync()
            except Exception:
                log.exception("simbroker: price update failed")
