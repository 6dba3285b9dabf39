"""``mtrobot hub``: the HTTP API on uvicorn, the bus connection behind it, and its own registry entry.

With ``--port 0`` the kernel picks a free port; once listening, the hub writes ``DATA_DIR/run/hub.json``
(``{"url": ...}``) so other commands and tests can find it. The API answers 503 until the bus does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from pathlib import Path

import uvicorn
from nats.aio.client import Client

from mtrobot.bus.identity import service_creds, service_inbox
from mtrobot.core.errors import FatalError
from mtrobot.files import write_atomically
from mtrobot.hub.api import HubContext, create_app
from mtrobot.hub.connection import connect_when_reachable, stop_task
from mtrobot.hub.registry import ServiceDirectory, ServiceRegistration
from mtrobot.hub.schemas import shared_registry
from mtrobot.hub.store import HubStore
from mtrobot.hub.token import ensure_hub_token, hub_token_path
from mtrobot.logging import get_logger
from mtrobot.settings import Settings

log = get_logger(__name__)

STARTUP_TIMEOUT_S = 30.0


def hub_info_path(settings: Settings) -> Path:
    return settings.run_dir / "hub.json"


def discover_hub_url(settings: Settings) -> str | None:
    """The URL a running ``mtrobot hub`` on this data dir announced, if any."""
    path = hub_info_path(settings)
    if not path.exists():
        return None
    url = json.loads(path.read_text()).get("url")
    return url if isinstance(url, str) else None


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HubServer:
    """The running hub: call :meth:`run` and stop it with SIGINT/SIGTERM (or :meth:`stop`)."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 0) -> None:
        url = settings.discover_nats_url()
        if url is None:
            raise FatalError("no bus: set MTROBOT_NATS_URL or start `mtrobot up` on this data dir")
        self.settings = settings
        self.nats_url = url
        self.host, self.port = host, port
        self.ctx = HubContext()
        self.url: str | None = None
        self._registration = ServiceRegistration("hub")
        self._server: uvicorn.Server | None = None
        self._nc: Client | None = None

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise FatalError(f"hub cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        sock.set_inheritable(True)
        return sock

    async def _attach_bus(self) -> None:
        registry = shared_registry()
        registry.load_entry_points()
        self._nc = await connect_when_reachable(
            self.nats_url, "hub", creds=service_creds(self.settings, "hub"), inbox_prefix=service_inbox("hub")
        )
        js = self._nc.jetstream(timeout=5)
        self.ctx.store = HubStore(js, registry)
        self.ctx.directory = ServiceDirectory(js)
        await self._registration.start(js)
        self.ctx.ready = True
        log.info("hub attached to the bus", schemas=sorted(registry.prefixes()))

    async def run(self) -> int:
        self.settings.ensure_dirs()
        sock = self._bind()
        self.port = sock.getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{self.port}"
        token = ensure_hub_token(self.settings)
        if not _is_loopback(self.host):
            log.warning(
                "hub API listens beyond this machine; every call still needs the token", host=self.host
            )
        app = create_app(self.ctx, token)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        # uvicorn re-raises the signal it shut down on; with these handlers that ends in stop(), not a
        # kill before the clean-up below has deregistered the hub.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        bus = asyncio.create_task(self._attach_bus(), name="hub-bus")
        serve = asyncio.create_task(self._server.serve(sockets=[sock]), name="hub-http")
        info = hub_info_path(self.settings)
        try:
            await self._announce_when_listening(serve, info)
            await serve
        finally:
            with contextlib.suppress(FileNotFoundError):
                info.unlink()
            await stop_task(bus)
            await self._registration.stop()
            if self._nc is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._nc.close(), 5)
            sock.close()
        return 0

    async def _announce_when_listening(self, serve: asyncio.Task[None], info: Path) -> None:
        assert self._server is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if serve.done():
                await serve
                raise FatalError("hub HTTP server stopped before it was listening")
            if loop.time() > deadline:
                raise FatalError("hub HTTP server did not start listening in time")
            await asyncio.sleep(0.02)
        write_atomically(info, json.dumps({"url": self.url, "pid": os.getpid()}))
        log.info("hub listening", url=self.url, token_file=str(hub_token_path(self.settings)))
        print(f"hub listening on {self.url} (token in {hub_token_path(self.settings)})", flush=True)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


async def serve_hub(settings: Settings, host: str = "127.0.0.1", port: int = 0) -> int:
    """Entry point of ``mtrobot hub``."""
    return await HubServer(settings, host, port).run()
