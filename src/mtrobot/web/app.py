"""The FastAPI application factory: ``create_app(settings)``.

Everything the app needs is built here from the settings and kept on ``app.state.mtrobot`` (no module
singletons): the database (migrated at start), the vault, the bus link and the activity listener.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from mtrobot.bus.identity import service_creds
from mtrobot.logging import get_logger
from mtrobot.robots.catalogue import Catalogue, robots_folder
from mtrobot.settings import Settings
from mtrobot.storage.db import make_engine, session_factory, upgrade_head
from mtrobot.vault import Vault, load_keyring
from mtrobot.web import agents as agents_service
from mtrobot.web.activity import ActivityRecorder, listen
from mtrobot.web.assets import docs_router, mount_assets
from mtrobot.web.bus import Bus, BusUnavailable
from mtrobot.web.config import WebOptions
from mtrobot.web.errors import document_problems, install_error_handlers
from mtrobot.web.frames import RawSocketAccess
from mtrobot.web.openapi_links import add_links
from mtrobot.web.pages import router as pages_router
from mtrobot.web.routes import (
    accounts,
    activity,
    agents,
    auth,
    health,
    orders,
    portfolio,
    robots,
    stream,
    tokens,
)
from mtrobot.web.security_throttle import BodyLimit
from mtrobot.web.state import AppState

log = get_logger(__name__)

API_PREFIX = "/api/v1"
LISTEN_RETRY_S = 5.0


def build_state(settings: Settings, options: WebOptions) -> AppState:
    settings.ensure_dirs()
    url = settings.resolved_database_url
    if options.migrate:
        upgrade_head(url)
    engine = make_engine(url)
    return AppState(
        settings=settings,
        options=options,
        engine=engine,
        sessions=session_factory(engine),
        vault=Vault(load_keyring(settings)),
        bus=Bus(
            settings.discover_nats_url,
            timeout=options.bus_timeout_s,
            creds_source=lambda: service_creds(settings, "web"),
        ),
        catalogue=Catalogue.load(robots_folder(settings.data_dir)),
    )


async def _keep_listening(state: AppState) -> None:
    """Subscribe the activity recorder once the bus is reachable; retry until then."""
    recorder = ActivityRecorder(state.sessions)
    while True:
        try:
            await listen(await state.bus.client(), recorder)
            log.info("recording broker events into the activity log")
            return
        except BusUnavailable as exc:
            log.info("activity log waits for the bus", reason=str(exc))
        await asyncio.sleep(LISTEN_RETRY_S)


async def _keep_streaming(state: AppState) -> None:
    """Feed the live stream from ``snapshot.*`` once the bus is reachable; after a reconnect, re-read the
    watched accounts' latest snapshots (those published while the bus was away were missed)."""
    source = state.stream_source

    async def on_state(change: str) -> None:
        if change == "reconnected":
            await source.fill(source.feed.watched(), force=True)

    state.bus.on_state(on_state)
    while True:
        try:
            await source.start(await state.bus.client())
            await source.fill(source.feed.watched(), force=True)
            log.info("live stream fed from the bus")
            return
        except BusUnavailable as exc:
            log.info("live stream waits for the bus", reason=str(exc))
        await asyncio.sleep(LISTEN_RETRY_S)


async def _prepare_demo(state: AppState) -> None:
    """Wait for the simulator to announce itself, then make sure the demo tenant exists."""
    from mtrobot.web.demo import ensure_demo
    from mtrobot.web.servers import simbroker_file

    loop = asyncio.get_running_loop()
    deadline = loop.time() + state.options.demo_wait_s
    while loop.time() < deadline:
        if simbroker_file(state.settings).exists():
            try:
                await ensure_demo(state.settings, sessions=state.sessions, vault=state.vault)
                return
            except Exception as exc:  # the simulator may still be starting: try again
                log.info("demo account not ready yet", reason=repr(exc))
        await asyncio.sleep(0.5)
    log.error("no demo account: the simulator did not come up", waited_s=state.options.demo_wait_s)


def create_app(settings: Settings, options: WebOptions | None = None) -> FastAPI:
    """The web app for ``settings``; migrates the database first (idempotent)."""
    state = build_state(settings, options or WebOptions())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[Any]] = []
        if state.options.listen_to_bus:
            tasks.append(asyncio.create_task(_keep_listening(state), name="web-activity-listener"))
            tasks.append(asyncio.create_task(_keep_streaming(state), name="web-stream-feed"))
            tasks.append(asyncio.create_task(agents_service.keep_watching(state), name="web-agent-watch"))
        if state.options.demo:
            tasks.append(asyncio.create_task(_prepare_demo(state), name="web-demo"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await state.stream_source.stop()
            await state.bus.close()
            state.engine.dispose()

    app = FastAPI(
        title="mtrobot",
        version="1",
        summary="Multi-tenant algorithmic trading for MetaTrader 5",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # served by mtrobot.web.assets from installed packages, never from a CDN
        redoc_url=None,
    )
    app.state.mtrobot = state
    app.add_middleware(BodyLimit, max_bytes=lambda: state.options.max_body_bytes)
    app.add_middleware(RawSocketAccess)  # the stream's direct frame writes (mtrobot.web.frames)
    install_error_handlers(app)
    api = APIRouter(prefix=API_PREFIX)
    for module in (auth, tokens, accounts, portfolio, robots, orders, agents, activity, stream):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(docs_router)
    app.include_router(pages_router)
    mount_assets(app)
    _problem_documented_openapi(app)
    return app


def _problem_documented_openapi(app: FastAPI) -> None:
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_links(document_problems(default(), API_PREFIX), API_PREFIX)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
