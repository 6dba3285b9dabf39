"""``ConfigClient``: a service's configuration, from the hub, with safe defaults and hot reload.

Usage::

    client = ConfigClient("connector.demo", safe_defaults=ConnectorConfig(), nats_url=url)
    await client.init_async()          # never fails because of the bus: starts on the defaults if need be
    config = await client.get_config() # the stored document laid over the safe defaults, validated
    client.on_change(apply)            # called with each new validated config
    ...
    await client.close()

The client watches its key in ``central_hub``. A document that fails validation is logged and ignored:
the service keeps the last good configuration. A deleted document means "back to the safe defaults".
While the client runs it is listed in the service registry (see :mod:`mtrobot.hub.registry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Literal, TypeVar

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from pydantic import BaseModel

from mtrobot.bus import subjects
from mtrobot.hub.connection import connect_when_reachable, stop_task
from mtrobot.hub.documents import ConfigDocumentError, parse_document, validate_document
from mtrobot.hub.kvread import DELETE_OPERATIONS, is_deletion, last_entry
from mtrobot.hub.registry import DEFAULT_HEARTBEAT_S, ServiceRegistration, new_instance_id
from mtrobot.hub.store import open_bucket
from mtrobot.logging import get_logger
from mtrobot.settings import Settings

log = get_logger(__name__)

M = TypeVar("M", bound=BaseModel)
Callback = Callable[[M], Awaitable[None] | None]
Source = Literal["defaults", "hub"]

CALLBACK_TIMEOUT_S = 10.0
POLL_S = 0.5


class ConfigClient(Generic[M]):
    """The configuration of one service, kept current from the hub. See the module docstring.

    ``nats_url`` defaults to the bus of ``Settings`` (``MTROBOT_NATS_URL`` or a running ``mtrobot up``).
    Pass ``nc`` to share a connection the service already has (it is not closed by :meth:`close`).
    ``instance_id`` names this process in the service registry (default: random); ``register=False``
    keeps it out of the registry.
    """

    def __init__(
        self,
        service_name: str,
        safe_defaults: M,
        nats_url: str | None = None,
        *,
        instance_id: str | None = None,
        register: bool = True,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_S,
        connect_timeout: float = 2.0,
        retry_delay: float = 0.5,
        max_retry_delay: float = 5.0,
        resync_interval: float = 30.0,
        nc: Client | None = None,
    ) -> None:
        self.service_name = subjects.hub_config_key(service_name)
        self.instance_id = instance_id or new_instance_id()
        self._defaults = safe_defaults
        self._schema: type[M] = type(safe_defaults)
        self._url = nats_url if nats_url is not None or nc is not None else Settings().discover_nats_url()
        self._connect_timeout = connect_timeout
        self._retry = (retry_delay, max_retry_delay)
        self._resync_interval = resync_interval
        self._current: M = safe_defaults
        self._revision: int | None = None
        self._seen: int | None = None  # the last revision looked at, applied or refused
        self._source: Source = "defaults"
        self._callbacks: list[Callback[M]] = []
        self._nc: Client | None = nc
        self._owns_nc = nc is None
        self._synced = asyncio.Event()
        self._unreachable = asyncio.Event()
        self._refused: int | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._registration = (
            ServiceRegistration(
                self.service_name,
                instance_id=self.instance_id,
                interval=heartbeat_interval,
                status=self._status,
            )
            if register
            else None
        )

    # -- public API -------------------------------------------------------------------------------

    async def init_async(self, timeout: float | None = None) -> None:
        """Start watching the hub; return once the stored config is applied or the bus proved down.

        Never raises because the bus or the hub is unreachable: the service then runs on its safe
        defaults (logged) and converges as soon as the bus answers.
        """
        if self._task is not None:
            return
        if self._url is None and self._nc is None:
            log.warning("no bus configured: running on safe defaults", service=self.service_name)
            return
        self._task = asyncio.create_task(self._run(), name=f"config-{self.service_name}")
        wait = timeout if timeout is not None else self._connect_timeout * 3 + 1.0
        waits = [asyncio.ensure_future(self._synced.wait()), asyncio.ensure_future(self._unreachable.wait())]
        try:
            await asyncio.wait(waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
        if not self._synced.is_set():
            log.warning(
                "hub unreachable at start: running on safe defaults until it answers",
                service=self.service_name,
            )

    async def get_config(self) -> M:
        """The configuration in force: the stored document over the safe defaults, validated."""
        return self._current

    def on_change(self, callback: Callback[M]) -> None:
        """Call ``callback`` (sync or async) with every new validated configuration."""
        self._callbacks.append(callback)

    @property
    def revision(self) -> int | None:
        """The ``central_hub`` revision in force, or None while on the safe defaults."""
        return self._revision if self._source == "hub" else None

    @property
    def refused_revision(self) -> int | None:
        """The last stored revision this client refused as invalid (it kept the previous config)."""
        return self._refused

    @property
    def source(self) -> Source:
        return self._source

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def close(self) -> None:
        """Stop watching, deregister from the service registry and close the bus connection."""
        self._closing = True
        task, self._task = self._task, None
        if self._registration is not None:
            await self._registration.stop()
        await stop_task(task)
        nc, self._nc = self._nc, None
        if nc is not None and self._owns_nc:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 5)

    # -- watching ----------------------------------------------------------------------------------

    def _status(self) -> dict[str, Any]:
        return {"config_revision": self.revision, "config_source": self._source}

    async def _run(self) -> None:
        first, cap = self._retry
        if self._nc is None:
            assert self._url is not None
            self._nc = await connect_when_reachable(
                self._url,
                f"config-{self.service_name}",
                connect_timeout=self._connect_timeout,
                first_delay=first,
                max_delay=cap,
                on_first_failure=self._unreachable.set,
            )
        nc = self._nc
        js = nc.jetstream(timeout=self._connect_timeout)
        if self._registration is not None:
            await self._registration.start(js)  # never raises: heartbeats retry by themselves
        delay = first
        while not self._closing:
            try:
                await self._follow(nc, js)
                delay = first
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("config watch interrupted, retrying", service=self.service_name, error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(cap, delay * 2)

    async def _read_current(self, js: JetStreamContext) -> None:
        """Apply the stored value (a direct get of the key: no consumer, no stream info)."""
        try:
            msg = await last_entry(js, subjects.HUB_BUCKET, self.service_name, direct=True)
        except nats.errors.NoRespondersError:
            # No bucket yet (a bus restarted empty: make it), or one made without direct gets (a bus
            # provisioned by an older version: the stream API still answers; `mtrobot up` updates it).
            await open_bucket(js, subjects.HUB_BUCKET)
            msg = await last_entry(js, subjects.HUB_BUCKET, self.service_name)
        if msg is None:
            if self._source == "hub":  # the stream lost the key entirely (bucket recreated)
                await self._apply(None, "PURGE", None)
        else:
            operation = "DEL" if is_deletion(msg.headers) else None
            await self._apply(msg.seq, operation, msg.data)
        self._mark_synced()

    async def _follow(self, nc: Client, js: JetStreamContext) -> None:
        """Apply every stored change of the key, as the bucket republishes it with its revision, until a
        re-read is due (after a reconnect: the subscription may have missed changes). No consumer: an
        agent's bus account may create none (docs/security.md)."""
        reconnects = nc.stats["reconnects"]
        changes = await nc.subscribe(subjects.hub_stored(self.service_name))
        loop = asyncio.get_running_loop()
        resync_at = loop.time() + self._resync_interval
        try:
            await self._read_current(js)  # after subscribing: a change in between is not lost
            while not self._closing and nc.stats["reconnects"] == reconnects:
                try:
                    msg = await changes.next_msg(timeout=POLL_S)
                except nats.errors.TimeoutError:
                    if loop.time() >= resync_at:
                        if await self._missed_an_update(js):
                            return  # a fresh follow re-reads the current value
                        resync_at = loop.time() + self._resync_interval
                    continue
                revision = (msg.headers or {}).get("Nats-Sequence")
                operation = "DEL" if is_deletion(msg.headers) else None
                await self._apply(int(revision) if revision else None, operation, msg.data)
        finally:
            with contextlib.suppress(Exception):
                await changes.unsubscribe()

    async def _missed_an_update(self, js: JetStreamContext) -> bool:
        """A cheap safety net behind the follow: does the stored revision differ from the last one seen?"""
        msg = await last_entry(js, subjects.HUB_BUCKET, self.service_name, direct=True)
        return (msg.seq if msg is not None else None) != self._seen

    def _mark_synced(self) -> None:
        if not self._synced.is_set():
            self._synced.set()
            log.info(
                "configuration in force",
                service=self.service_name,
                source=self._source,
                revision=self.revision,
            )

    async def _apply(self, revision: int | None, operation: str | None, value: bytes | None) -> None:
        if revision is not None and revision == self._seen:
            self._mark_synced()
            return
        self._seen = revision
        source: Source = "defaults"
        if operation in DELETE_OPERATIONS:
            new = self._defaults
        else:
            try:
                document = parse_document(self.service_name, value or b"")
                new = validate_document(self.service_name, self._schema, document, self._defaults)
            except ConfigDocumentError as exc:
                fields = [e.field for e in exc.errors]
                log.error(
                    "stored configuration refused: keeping the last good one",
                    service=self.service_name,
                    revision=revision,
                    fields=fields,
                    error=str(exc),
                )
                self._refused = revision
                self._mark_synced()
                return
            source = "hub"
        changed = new != self._current
        self._current, self._revision, self._source = new, revision, source
        log.info("configuration applied", service=self.service_name, revision=revision, source=source)
        self._mark_synced()
        if changed:
            await self._notify(new)

    async def _notify(self, config: M) -> None:
        for callback in list(self._callbacks):
            try:
                result = callback(config)
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, CALLBACK_TIMEOUT_S)
            except Exception as exc:  # one faulty callback must not stop hot reload
                log.error("config change callback failed", service=self.service_name, error=repr(exc))
