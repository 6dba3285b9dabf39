"""The web app served by a real uvicorn on a free port (in a thread), for WebSocket and browser tests."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from mtrobot.bus.server import free_port
from mtrobot.settings import Settings
from mtrobot.web.app import create_app
from mtrobot.web.config import WebOptions
from mtrobot.web.state import AppState

PASSWORD = "correct horse battery"


@dataclass
class LiveWeb:
    url: str
    state: AppState

    def trader(self, name: str = "trader") -> WebTrader:
        client = httpx.Client(base_url=self.url, timeout=10)
        email = f"{name}-{secrets.token_hex(4)}@example.com"
        r = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD, "name": name})
        assert r.status_code == 201, r.text
        body = r.json()
        return WebTrader(client, body["trader"]["id"], email, body["csrf_token"])


@dataclass
class WebTrader:
    client: httpx.Client
    id: str
    email: str
    csrf: str

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.client.cookies.items())

    def send(self, method: str, url: str, **kw: object) -> httpx.Response:
        return self.client.request(method, url, headers={"X-CSRF-Token": self.csrf}, **kw)  # type: ignore[arg-type]


def serve(settings: Settings, options: WebOptions) -> Iterator[LiveWeb]:
    app = create_app(settings, options)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the web server did not start"
        time.sleep(0.02)
    try:
        yield LiveWeb(f"http://127.0.0.1:{port}", app.state.mtrobot)
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def live_web(data_dir, tmp_path, nats_url: str) -> Iterator[LiveWeb]:
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{tmp_path / 'web.db'}", nats_url=nats_url)
    options = WebOptions(cookie_secure=False, stream_recheck_s=0.3)
    yield from serve(settings, options)
