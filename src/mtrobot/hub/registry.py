"""The registry of running services: one heartbeat entry per instance in the KV bucket ``service_registry``.

Each running instance re-puts its entry every ``interval`` seconds. A clean stop deletes the entry at
once; an instance that dies without a goodbye is dropped from listings after three missed heartbeats,
and its entry expires from the bucket (TTL) shortly after.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import nats.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mtrobot.bus import subjects
from mtrobot.bus.connect import REGISTRY_TTL_S, own_key_value
from mtrobot.hub.connection import stop_task
from mtrobot.hub.kvread import live_entries
from mtrobot.hub.store import open_bucket
from mtrobot.logging import get_logger

log = get_logger(__name__)

DEFAULT_HEARTBEAT_S = 5.0
MISSED_BEATS = 3
PUT_TIMEOUT_S = 2.0


class ServiceInstance(BaseModel):
    """One running instance of a service, as it last reported itself."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    service: str
    instance_id: str
    pid: int
    host: str
    started_at: datetime
    last_seen: datetime
    heartbeat_interval_s: float = Field(gt=0)
    config_revision: int | None = None
    config_source: str = "defaults"

    def is_stale(self, now: datetime) -> bool:
        """True once the instance missed three heartbeats (it crashed or lost the bus)."""
        grace = timedelta(seconds=MISSED_BEATS * self.heartbeat_interval_s + 1.0)
        return now - self.last_seen > grace


def new_instance_id() -> str:
    return uuid.uuid4().hex[:12]


class ServiceRegistration:
    """Heartbeats the registry entry of one running instance until :meth:`stop`.

    ``status`` is called before each heartbeat for extra fields (e.g. the config revision in use).
    Heartbeats that fail (bus down) are logged once and retried on the next tick.
    """

    def __init__(
        self,
        service: str,
        *,
        instance_id: str | None = None,
        interval: float = DEFAULT_HEARTBEAT_S,
        status: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        if not 0 < interval <= REGISTRY_TTL_S / MISSED_BEATS:
            raise ValueError(f"heartbeat interval must be in (0, {REGISTRY_TTL_S / MISSED_BEATS}] seconds")
        self.service = service
        self.instance_id = instance_id or new_instance_id()
        self.key = subjects.registry_key(service, self.instance_id)
        self.interval = interval
        self.started_at = datetime.now(UTC)
        self._status = status
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def entry(self) -> ServiceInstance:
        return ServiceInstance(
            service=self.service,
            instance_id=self.instance_id,
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=self.started_at,
            last_seen=datetime.now(UTC),
            heartbeat_interval_s=self.interval,
            **(self._status() if self._status else {}),
        )

    async def start(self, js: JetStreamContext) -> None:
        """Put the first entry now (best effort) and keep heartbeating in a background task."""
        if self._task is not None:
            return
        self._js = js
        await self.beat()
        self._task = asyncio.create_task(self._loop(), name=f"registry-{self.key}")

    async def beat(self) -> bool:
        """Put the entry once; False (and logged once per outage) when the bus refuses."""
        if self._js is None:
            return False
        try:
            value = self.entry().model_dump_json().encode()
            if self._kv is None:
                # No stream info: an agent's bus account may write its own entries and read nothing else.
                self._kv = own_key_value(self._js, subjects.REGISTRY_BUCKET)
            try:
                await asyncio.wait_for(self._kv.put(self.key, value), PUT_TIMEOUT_S)
            except nats.errors.NoRespondersError:  # no bucket (a bus restarted empty): make it
                self._kv = await asyncio.wait_for(
                    open_bucket(self._js, subjects.REGISTRY_BUCKET), PUT_TIMEOUT_S
                )
                await asyncio.wait_for(self._kv.put(self.key, value), PUT_TIMEOUT_S)
        except Exception as exc:
            self._kv = None  # the bucket may be gone (bus restarted empty): re-open or re-create it
            if not self._failing:
                log.warning("registry heartbeat failed", service=self.service, error=repr(exc))
            self._failing = True
            return False
        if self._failing:
            log.info("registry heartbeat resumed", service=self.service)
        self._failing = False
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.beat()

    async def stop(self, *, deregister: bool = True) -> None:
        """Stop heartbeating and (by default) remove the entry so listings drop it at once."""
        task, self._task = self._task, None
        await stop_task(task)
        if deregister and self._kv is not None:
            try:
                await asyncio.wait_for(self._kv.delete(self.key), PUT_TIMEOUT_S)
            except Exception as exc:  # it expires by itself anyway
                log.warning("registry deregistration failed", service=self.service, error=repr(exc))


class ServiceDirectory:
    """Reads the registry: the instances that are running now."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._opened = False

    async def running(self, service: str | None = None) -> list[ServiceInstance]:
        """Live instances (optionally of one service), sorted by service and start time."""
        if not self._opened:
            await open_bucket(self._js, subjects.REGISTRY_BUCKET)
            self._opened = True
        now = datetime.now(UTC)
        found = []
        for _key, msg in await live_entries(self._js, subjects.REGISTRY_BUCKET):
            try:
                instance = ServiceInstance.model_validate_json(msg.data or b"")
            except ValidationError:
                continue  # not an entry of ours
            if instance.is_stale(now) or (service is not None and instance.service != service):
                continue
            found.append(instance)
        return sorted(found, key=lambda i: (i.service, i.started_at))
