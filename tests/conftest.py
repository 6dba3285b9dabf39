"""Shared fixtures: a real nats-server from the wheel per test session, on a free port."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mtrobot.bus.connect import connect, provision
from mtrobot.bus.server import EmbeddedNats

os.environ.setdefault("HYPOTHESIS_PROFILE", "ci")


@pytest.fixture(autouse=True)
def _no_mtrobot_up_left_running() -> Iterator[None]:
    """A test that fails while waiting on ``mtrobot up`` must not leave the platform running."""
    yield
    from tests.e2e.proc_tools import stop_leftovers

    stop_leftovers()


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real nats-server with JetStream for the whole session (never the system one on 4222)."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"))
    loop = asyncio.new_event_loop()
    try:
        url = loop.run_until_complete(server.start())
        loop.run_until_complete(_provision(url))
        yield url
    finally:
        loop.run_until_complete(server.stop())
        loop.close()


async def _provision(url: str) -> None:
    nc = await connect(url, "tests-provision", max_reconnect_attempts=3)
    try:
        await provision(nc.jetstream(timeout=10))
    finally:
        await nc.close()


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[object]:
    client = await connect(nats_url, "tests", max_reconnect_attempts=3)
    yield client
    await client.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d
