"""Before an agent starts, the hub gets the account's portfolio as the database keeps it
(``portfolio.{account}``) when it has none yet; the agent hot-loads it. The account's identity (backend,
login, server) is never written to the hub: it reaches the agent in the hand-off only, and the hub refuses it
(no configuration change can send a password to another server)."""

from __future__ import annotations

import contextlib

from nats.aio.client import Client

from mtrobot.bus import subjects
from mtrobot.bus.connect import connect
from mtrobot.hub.store import HubStore
from mtrobot.logging import get_logger

from .handoff import AgentRecord

log = get_logger(__name__)


class HubSeeder:
    def __init__(self, nats_url: str | None) -> None:
        self._url = nats_url
        self._nc: Client | None = None

    async def _store(self) -> HubStore | None:
        if self._url is None:
            return None
        if self._nc is None or self._nc.is_closed:
            self._nc = await connect(self._url, "supervisor", max_reconnect_attempts=-1)
        return HubStore(self._nc.jetstream(timeout=5))

    async def seed(self, record: AgentRecord) -> None:
        """Never raises: an agent still starts when the hub is away (it runs on the record's identity)."""
        try:
            store = await self._store()
            if store is None:
                return
            if record.portfolio is not None:
                await store.put_if_absent(subjects.portfolio_service(record.account), record.portfolio)
        except Exception as exc:
            log.warning("hub not seeded for the agent", account=record.account, error=repr(exc))

    async def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None
