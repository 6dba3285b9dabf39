"""Before an agent starts, the hub should have the account's portfolio: when it has none yet, the
supervisor writes the one the database keeps (``portfolio.{account}``), which the agent then hot-loads. (The
account's identity, backend, server and login, never comes from the hub: the agent takes it from the
hand-off.)"""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.client import Client

from mtrobot.bus import subjects
from mtrobot.bus.connect import connect
from mtrobot.bus.identity import service_creds, service_inbox
from mtrobot.hub.store import HubStore
from mtrobot.logging import get_logger
from mtrobot.settings import Settings

from .handoff import AgentRecord

log = get_logger(__name__)

CONNECT_TIMEOUT_S = 5.0


class HubSeeder:
    def __init__(self, nats_url: str | None, settings: Settings) -> None:
        self._url = nats_url
        self._settings = settings
        self._nc: Client | None = None
        self._connecting = asyncio.Lock()
        """Agents start concurrently: without it each of them made a connection, one was kept and closed at
        the end, and the others reconnected forever (a test's teardown hung on them)."""

    async def client(self) -> Client | None:
        """The supervisor's own bus connection (its identity), shared with the agents' bus authority."""
        if self._url is None:
            return None
        async with self._connecting:
            if self._nc is None or self._nc.is_closed:
                # Bounded: a bus that is away must not hold up the supervisor's round (or its shutdown).
                self._nc = await asyncio.wait_for(
                    connect(
                        self._url,
                        "supervisor",
                        max_reconnect_attempts=-1,
                        creds=service_creds(self._settings, "supervisor"),
                        inbox_prefix=service_inbox("supervisor"),
                    ),
                    CONNECT_TIMEOUT_S,
                )
            return self._nc

    async def _store(self) -> HubStore | None:
        nc = await self.client()
        return None if nc is None else HubStore(nc.jetstream(timeout=5))

    async def seed(self, record: AgentRecord) -> None:
        """Never raises: an agent still starts when the hub is away (it then uses the hand-off's copy)."""
        if record.portfolio is None:
            return
        try:
            store = await self._store()
            if store is not None:
                await store.put_if_absent(subjects.portfolio_service(record.account), record.portfolio)
        except Exception as exc:
            log.warning("hub not seeded for the agent", account=record.account, error=repr(exc))

    async def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 5)
            self._nc = None
