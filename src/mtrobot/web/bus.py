"""The web's link to NATS: publishing orders into JetStream, reading the agents' latest snapshots.

The connection is made lazily and kept; if NATS cannot be reached, callers get :class:`BusUnavailable`
(a clear 503 for the trader), never a silently dropped order. ``maybe_sent`` tells an ambiguous failure
(the publish may have reached the stream: retrying with the same order id is safe, JetStream drops the
duplicate inside its window) from a certain one (nothing left this process).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError, NoStreamResponseError
from nats.js.errors import NotFoundError as JsNotFoundError
from pydantic import ValidationError

from mtrobot.bus import subjects
from mtrobot.bus.codec import decode, encode
from mtrobot.bus.connect import connect
from mtrobot.bus.identity import service_inbox
from mtrobot.core.events import AccountSnapshot
from mtrobot.core.orders import OrderRequest
from mtrobot.logging import get_logger

log = get_logger(__name__)


class BusUnavailable(Exception):
    def __init__(self, detail: str, *, maybe_sent: bool = False) -> None:
        super().__init__(detail)
        self.maybe_sent = maybe_sent


class Bus:
    def __init__(
        self,
        url_source: Callable[[], str | None],
        timeout: float = 3.0,
        creds_source: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._url_source = url_source
        self._creds_source = creds_source  # the web's own bus identity (mtrobot.bus.identity)
        self._timeout = timeout
        self._nc: Client | None = None
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[str], Awaitable[None]]] = []

    def on_state(self, listener: Callable[[str], Awaitable[None]]) -> None:
        """Call ``listener("disconnected" | "reconnected")`` when the connection changes."""
        self._listeners.append(listener)

    async def _state_changed(self, state: str) -> None:
        for listener in self._listeners:
            try:
                await listener(state)
            except Exception as exc:
                log.error("bus state listener failed", state=state, error=repr(exc))

    async def client(self) -> Client:
        """The connected client, connecting on first use; raises :class:`BusUnavailable`."""
        async with self._lock:
            if self._nc is not None and not self._nc.is_closed:
                return self._nc
            url = self._url_source()
            if not url:
                raise BusUnavailable("no message bus is configured or running")
            try:
                self._nc = await asyncio.wait_for(
                    connect(
                        url,
                        "mtrobot-web",
                        connect_timeout=self._timeout,
                        on_state=self._state_changed,
                        creds=self._creds_source(),
                        inbox_prefix=service_inbox("web"),
                    ),
                    self._timeout * 2,
                )
            except (OSError, TimeoutError, nats.errors.Error) as exc:
                raise BusUnavailable(
                    f"the message bus at {url} does not answer ({type(exc).__name__})"
                ) from None
            return self._nc

    async def publish_order(self, request: OrderRequest) -> None:
        """Publish into stream ORDERS with a ``Nats-Msg-Id``; returns once the stream has stored it."""
        nc = await self.client()
        if not nc.is_connected:
            raise BusUnavailable("the message bus connection is down; the order was not sent")
        js = nc.jetstream(timeout=self._timeout)
        subject = subjects.orders_submitted(request.account, request.symbol)
        # The id is unique per account, the stream's dedup window is global: qualify it.
        headers = {"Nats-Msg-Id": f"{request.account}/{request.order_id}"}
        try:
            await js.publish(subject, encode(request), headers=headers, timeout=self._timeout)
        except NoStreamResponseError:
            raise BusUnavailable("the order stream is not provisioned; the order was not stored") from None
        except (TimeoutError, nats.errors.Error) as exc:
            raise BusUnavailable(
                f"the message bus did not confirm the order ({type(exc).__name__})", maybe_sent=True
            ) from None

    async def latest_snapshot(self, account_id: str) -> AccountSnapshot | None:
        nc = await self.client()
        try:
            kv = await nc.jetstream(timeout=self._timeout).key_value(subjects.SNAPSHOTS_BUCKET)
            entry = await kv.get(account_id)
        except (KeyNotFoundError, JsNotFoundError):
            return None
        except (TimeoutError, nats.errors.Error) as exc:
            raise BusUnavailable(f"the message bus did not answer ({type(exc).__name__})") from None
        if entry.value is None:
            return None
        try:
            snapshot = decode(AccountSnapshot, entry.value)
        except ValidationError:
            log.warning("unreadable snapshot", account=account_id)
            return None
        if snapshot.account != account_id:
            # Stored under another account's key (a misbehaving writer): showing it, or cancelling and
            # closing by its tickets, would act on what another account holds.
            log.warning("snapshot of another account refused", key=account_id, payload=snapshot.account)
            return None
        return snapshot

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(Exception):
                await nc.drain()
