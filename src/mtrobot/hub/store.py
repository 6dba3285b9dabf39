"""``HubStore``: configuration documents in the JetStream KV bucket ``central_hub``, one key per service.

The bucket keeps the last 20 revisions of every key, which is the history an operator can roll back to.
A document is validated before anything is written; a refused document leaves the bucket untouched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import BaseModel

from mtrobot.bus import subjects
from mtrobot.bus.connect import BUCKETS
from mtrobot.hub.documents import (
    ConfigDocumentError,
    FieldError,
    refuse_secrets,
    require_object,
    validate_document,
)
from mtrobot.hub.errors import BusUnavailable, NotConfigured, RevisionConflict, UnknownRevision
from mtrobot.hub.kvread import is_deletion, key_history, last_entry, live_entries
from mtrobot.hub.schemas import SchemaRegistry, shared_registry


@dataclass(frozen=True, slots=True)
class StoredConfig:
    """The document stored for a service, at ``revision`` (a sequence number of the bucket)."""

    service: str
    revision: int
    document: dict[str, Any]
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One revision of a key: a put (with its document) or a deletion (``document`` is None)."""

    revision: int
    operation: str
    updated_at: datetime | None
    document: dict[str, Any] | None


def encode_document(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def service_key(service: str) -> str:
    try:
        return subjects.hub_config_key(service)
    except ValueError as exc:
        raise ConfigDocumentError(service, [FieldError("service", str(exc))]) from None


async def open_bucket(js: JetStreamContext, name: str) -> KeyValue:
    """The KV bucket ``name``, created from its provisioning config if it does not exist yet."""
    try:
        return await js.key_value(name)
    except (nats.js.errors.NotFoundError, nats.js.errors.BadRequestError):
        config = next(b for b in BUCKETS if b.bucket == name)
        return await js.create_key_value(config)


class HubStore:
    """Read, write, list, history and rollback of configuration documents. Used by the API and tests."""

    def __init__(self, js: JetStreamContext, registry: SchemaRegistry | None = None) -> None:
        self._js = js
        self._registry = registry or shared_registry()
        self._kv: KeyValue | None = None

    @property
    def registry(self) -> SchemaRegistry:
        return self._registry

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            try:
                self._kv = await open_bucket(self._js, subjects.HUB_BUCKET)
            except (nats.errors.TimeoutError, nats.errors.ConnectionClosedError) as exc:
                raise BusUnavailable(f"bucket {subjects.HUB_BUCKET} unreachable: {exc!r}") from exc
        return self._kv

    def validate(self, service: str, document: object) -> BaseModel | None:
        """Check ``document`` for ``service``: the registered schema if any, secrets and shape always.

        Returns the validated model (the document over the schema's defaults), or None when no schema is
        registered for the service (then only the secret check and the JSON-object check apply).
        """
        service_key(service)
        body = require_object(service, document)
        schema = self._registry.schema_for(service)
        if schema is None:
            refuse_secrets(service, body)
            return None
        return validate_document(service, schema, body)

    async def get(self, service: str) -> StoredConfig:
        """The current document of ``service``; :class:`NotConfigured` when there is none."""
        await self._bucket()
        msg = await last_entry(self._js, subjects.HUB_BUCKET, service_key(service))
        if msg is None:
            raise NotConfigured(f"no configuration stored for {service!r}")
        if is_deletion(msg.headers):
            raise NotConfigured(f"the configuration of {service!r} was deleted")
        return StoredConfig(service, int(msg.seq or 0), json.loads(msg.data or b"{}"), msg.time)

    async def put(self, service: str, document: object, *, expected_revision: int | None = None) -> int:
        """Validate and store ``document``; returns the new revision. Nothing is written if refused.

        With ``expected_revision`` the write succeeds only if the stored revision is still that one
        (0 means: only if nothing is stored yet); otherwise :class:`RevisionConflict`.
        """
        self.validate(service, document)
        value = encode_document(require_object(service, document))
        kv = await self._bucket()
        key = service_key(service)
        try:
            if expected_revision is None:
                return await kv.put(key, value)
            if expected_revision == 0:
                return await kv.create(key, value)
            return await kv.update(key, value, last=expected_revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise RevisionConflict(
                f"the configuration of {service!r} changed since revision {expected_revision}"
            ) from None

    async def put_if_absent(self, service: str, document: object) -> int | None:
        """Store ``document`` unless one is already stored (seeding); the new revision, or None."""
        try:
            return await self.put(service, document, expected_revision=0)
        except RevisionConflict:
            return None

    async def delete(self, service: str) -> None:
        """Remove the document: running clients fall back to their safe defaults. History is kept."""
        kv = await self._bucket()
        await self.get(service)  # NotConfigured if there is nothing to delete
        await kv.delete(service_key(service))

    async def history(self, service: str) -> list[HistoryEntry]:
        """Every revision still kept for ``service``, oldest first (empty if it was never configured)."""
        await self._bucket()
        result = []
        for msg in await key_history(self._js, subjects.HUB_BUCKET, service_key(service)):
            headers = msg.headers or {}
            deleted = is_deletion(headers)
            document = None if deleted or not msg.data else json.loads(msg.data)
            operation = headers.get("KV-Operation", "DEL" if deleted else "PUT")
            meta = msg.metadata
            result.append(HistoryEntry(meta.sequence.stream, operation, meta.timestamp, document))
        return result

    async def rollback(self, service: str, revision: int) -> int:
        """Store again the document ``service`` had at ``revision``; returns the new revision.

        The old document is validated against today's schema first: a rollback cannot bring back a
        document that is no longer valid.
        """
        kv = await self._bucket()
        try:
            entry = await kv.get(service_key(service), revision=revision)
        except nats.js.errors.KeyNotFoundError:
            raise UnknownRevision(
                f"revision {revision} of {service!r} does not exist or was deleted"
            ) from None
        return await self.put(service, json.loads(entry.value or b"{}"))

    async def services(self) -> list[StoredConfig]:
        """Every service with a stored document, sorted by name."""
        await self._bucket()
        return [
            StoredConfig(key, int(msg.seq or 0), json.loads(msg.data or b"{}"), msg.time)
            for key, msg in await live_entries(self._js, subjects.HUB_BUCKET)
        ]
