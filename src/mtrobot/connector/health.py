"""``/healthz``, ``/readyz`` and ``/metrics`` of a stand-alone connector, served on its own event loop.

Three GET routes for probes and a Prometheus scraper need no web framework: a plain asyncio server answers
them (HTTP/1.1, one request per connection, ``Connection: close``). FastAPI and uvicorn with their imports
held ~8.6 MB of every stand-alone connector's memory for these three answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from http import HTTPStatus
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from mtrobot.core.lifecycle import OrderState

from .service import Connector

_TERMINAL = {s.value for s in OrderState if s.is_terminal}
_JSON = "application/json"
_READ_TIMEOUT_S = 5.0
"""A client that has not sent its request line and headers by then is dropped."""
_MAX_HEADER_LINES = 100

Answer = tuple[int, str, bytes]


def _json(status: int, body: dict[str, Any]) -> Answer:
    return status, _JSON, json.dumps(body, separators=(",", ":")).encode()


class HealthRoutes:
    """What each path answers, apart from the HTTP around it."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector

    def answer(self, method: str, path: str) -> Answer:
        route = {"/healthz": self.healthz, "/readyz": self.readyz, "/metrics": self.metrics}.get(
            path.split("?", 1)[0]
        )
        if route is None:
            return _json(404, {"detail": "Not Found"})
        if method not in ("GET", "HEAD"):
            return _json(405, {"detail": "Method Not Allowed"})
        return route()

    def healthz(self) -> Answer:
        return _json(200, {"status": "ok", "account": self.connector.account})

    def readyz(self) -> Answer:
        connector = self.connector
        ready = connector.ready
        return _json(
            200 if ready else 503,
            {
                "ready": ready,
                "account": connector.account,
                "session": connector.session.state.value,
                "intake": connector.intake_running,
            },
        )

    def metrics(self) -> Answer:
        connector = self.connector
        m = connector.metrics
        m.session_up.labels(connector.account).set(1 if connector.session.ready else 0)
        m.broker_calls.labels(connector.account).set(connector.link.calls)
        m.broker_failures.labels(connector.account).set(connector.link.failures)
        m.reconnects.labels(connector.account).set(connector.session.connects)
        if connector.journal is not None:
            states = connector.journal.count_by_state()
            waiting = sum(n for state, n in states.items() if state not in _TERMINAL)
            m.open_orders.labels(connector.account).set(waiting)
        for sink, size in connector.audit.backlog().items():
            m.audit_backlog.labels(connector.account, sink).set(size)
        return 200, CONTENT_TYPE_LATEST, m.render()


def _response(answer: Answer, head_only: bool) -> bytes:
    status, content_type, body = answer
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    return head if head_only else head + body


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """The request line's method and path (headers read and ignored), or None for a malformed request."""
    parts = (await reader.readline()).decode("latin-1").split()
    for _ in range(_MAX_HEADER_LINES):
        if (await reader.readline()) in (b"\r\n", b"\n", b""):
            break
    else:
        return None
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    return parts[0], parts[1]


class HealthServer:
    """Serves :class:`HealthRoutes` on ``host:port`` (port 0 picks a free one; see :attr:`port`)."""

    def __init__(self, connector: Connector, host: str = "127.0.0.1", port: int = 8014) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(128)  # from here a connection waits in the backlog: the port is announced before
        self.host = host  # the server task has run, and a caller connecting at once was refused
        self.port = int(self._sock.getsockname()[1])
        self.routes = HealthRoutes(connector)
        self._server: asyncio.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._serve(), name="connector-health")

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._client, sock=self._sock)
        await self._server.serve_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                request = await _read_request(reader)
                if request is None:
                    answer = _json(400, {"detail": "Bad Request"})
                    writer.write(_response(answer, head_only=False))
                else:
                    method, path = request
                    writer.write(_response(self.routes.answer(method, path), head_only=method == "HEAD"))
                await writer.drain()
        except (TimeoutError, ConnectionError, ValueError):  # ValueError: a line past the reader's limit
            pass  # a probe that went away or never spoke: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 5)
        self._sock.close()
