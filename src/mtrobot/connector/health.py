"""``/healthz``, ``/readyz`` and ``/metrics`` of a stand-alone connector (uvicorn in the same event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST

from mtrobot.core.lifecycle import OrderState

from .service import Connector

_TERMINAL = {s.value for s in OrderState if s.is_terminal}


def health_app(connector: Connector) -> FastAPI:
    app = FastAPI(title="mtrobot connector", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "account": connector.account}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, Any]:
        ready = connector.ready
        response.status_code = 200 if ready else 503
        return {
            "ready": ready,
            "account": connector.account,
            "session": connector.session.state.value,
            "intake": connector.intake_running,
        }

    @app.get("/metrics")
    async def metrics() -> Response:
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
        return Response(m.render(), media_type=CONTENT_TYPE_LATEST)

    return app


class HealthServer:
    """Serves :func:`health_app` on ``host:port`` (port 0 picks a free one; see :attr:`port`)."""

    def __init__(self, connector: Connector, host: str = "127.0.0.1", port: int = 8014) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(128)  # from here a connection waits in the backlog: the port is announced before
        self.host = host  # the server task has run, and a caller connecting at once was refused
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(health_app(connector), log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="connector-health")

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
        self._sock.close()
