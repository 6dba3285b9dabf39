"""The aggregator's two edges in an agent: the terminal session it reads, the bus it publishes to."""

from __future__ import annotations

from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError, NotFoundError
from pydantic import ValidationError

from mtrobot.broker.structures import AccountInfo, TradeDeal, TradeOrder, TradePosition
from mtrobot.broker.terminal import Terminal
from mtrobot.bus import subjects
from mtrobot.bus.codec import decode, encode
from mtrobot.bus.connect import own_key_value
from mtrobot.connector.session import Session
from mtrobot.core.events import AccountSnapshot, ConnectionState


class SessionReader:
    """:class:`~mtrobot.agent.aggregator.AccountReader` over the connector's session: each read goes through
    its audited, time-limited link; a failed read is ``None``."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def connection(self) -> ConnectionState:
        return self._session.state

    async def _read(self, operation: str, *args: Any) -> Any:
        if not self._session.ready:
            return None
        result = await self._session.link.call(operation, *args, audited=False)  # display reads
        return result.value if result.ok else None

    async def account_info(self) -> AccountInfo | None:
        value: AccountInfo | None = await self._read("account_info")
        return value

    async def positions_get(self) -> tuple[TradePosition, ...] | None:
        value: tuple[TradePosition, ...] | None = await self._read("positions_get")
        return value

    async def orders_get(self) -> tuple[TradeOrder, ...] | None:
        value: tuple[TradeOrder, ...] | None = await self._read("orders_get")
        return value

    async def history_deals_get(self, date_from: int, date_to: int) -> tuple[TradeDeal, ...] | None:
        value: tuple[TradeDeal, ...] | None = await self._read("history_deals_get", date_from, date_to)
        return value


class TerminalReader:
    """:class:`~mtrobot.agent.aggregator.AccountReader` straight over a logged-in terminal (no session, no
    audit): for the aggregator on its own, in tests and ``mtrobot bench stream``."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self.state = ConnectionState.CONNECTED

    def connection(self) -> ConnectionState:
        return self.state

    async def account_info(self) -> AccountInfo | None:
        return await self.terminal.account_info()

    async def positions_get(self) -> tuple[TradePosition, ...] | None:
        return await self.terminal.positions_get()

    async def orders_get(self) -> tuple[TradeOrder, ...] | None:
        return await self.terminal.orders_get()

    async def history_deals_get(self, date_from: int, date_to: int) -> tuple[TradeDeal, ...] | None:
        return await self.terminal.history_deals_get(date_from, date_to)


class NatsSnapshotSink:
    """Publishes on ``snapshot.{account}``; keeps the latest in KV ``account_snapshots`` (key: account)."""

    def __init__(self, nc: Client, account: str, timeout: float = 5.0) -> None:
        self._nc = nc
        self._account = account
        self._timeout = timeout
        self._subject = subjects.snapshot(account)
        self._kv: Any = None

    async def _bucket(self) -> Any:
        if self._kv is None:
            # Its own key only (no stream info): the agent's bus account may read nothing else.
            self._kv = own_key_value(self._nc.jetstream(timeout=self._timeout), subjects.SNAPSHOTS_BUCKET)
        return self._kv

    async def last_seq(self) -> int | None:
        try:
            entry = await (await self._bucket()).get(self._account)
        except (KeyNotFoundError, NotFoundError):
            return None
        if entry.value is None:
            return None
        try:
            return decode(AccountSnapshot, entry.value).seq
        except ValidationError:
            return None

    async def publish(self, snapshot: AccountSnapshot) -> None:
        payload = encode(snapshot)
        if not self._nc.is_connected:
            raise nats.errors.ConnectionClosedError
        await self._nc.publish(self._subject, payload)
        await (await self._bucket()).put(self._account, payload)
