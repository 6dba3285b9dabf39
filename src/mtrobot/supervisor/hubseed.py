"""Before an agent starts, the hub must agree with the account's record: its identity (backend, login,
server under ``connector.{account}``'s ``mt5_connection``, never a password) and, when the hub has none yet,
its portfolio as the database keeps it (``portfolio.{account}``). The agent then hot-loads both."""

from __future__ import annotations

import contextlib
from typing import Any

from nats.aio.client import Client

from mtrobot.bus import subjects
from mtrobot.bus.connect import connect
from mtrobot.hub.errors import NotConfigured
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
            await self._connection(store, record)
            if record.portfolio is not None:
                await store.put_if_absent(subjects.portfolio_service(record.account), record.portfolio)
        except Exception as exc:
            log.warning("hub not seeded for the agent", account=record.account, error=repr(exc))

    async def _connection(self, store: HubStore, record: AgentRecord) -> None:
        service = f"connector.{record.account}"
        try:
            document: dict[str, Any] = dict((await store.get(service)).document)
        except NotConfigured:
            document = {}
        connection = dict(document.get("mt5_connection") or {})
        wanted = {"backend": record.backend, "login": record.login, "server": record.server}
        if any(connection.get(k) != v for k, v in wanted.items()):
            document["mt5_connection"] = connection | wanted
            await store.put(service, document)

    async def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None
