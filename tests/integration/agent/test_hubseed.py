"""The supervisor's one bus connection, asked for by several agent starts at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mtrobot.settings import Settings
from mtrobot.supervisor.hubseed import HubSeeder


async def test_concurrent_starts_share_one_connection(nats_url: str, tmp_path: Path) -> None:
    seeder = HubSeeder(nats_url, Settings(data_dir=tmp_path, nats_url=nats_url))
    clients = await asyncio.gather(*(seeder.client() for _ in range(5)))  # as 5 agents starting at once
    try:
        assert len({id(c) for c in clients}) == 1, "each start made its own connection (the others leak)"
    finally:
        await seeder.close()
    assert all(c is not None and c.is_closed for c in clients)
