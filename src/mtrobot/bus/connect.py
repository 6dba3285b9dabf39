"""Connecting to NATS with reconnect, and provisioning the streams and buckets of DESIGN.md 3.2."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client, RawCredentials
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RePublish,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, BadRequestError, NotFoundError
from nats.js.kv import KeyValue

from mtrobot.bus import subjects
from mtrobot.logging import get_logger

log = get_logger(__name__)

DAY = 24 * 3600.0
REGISTRY_TTL_S = 30.0


async def connect(
    url: str,
    name: str,
    *,
    connect_timeout: float = 2.0,
    max_reconnect_attempts: int = -1,
    allow_reconnect: bool = True,
    user_credentials: tuple[str, str] | None = None,
    on_state: Callable[[str], Awaitable[None]] | None = None,
    creds: str | None = None,
    inbox_prefix: str | None = None,
) -> Client:
    """A client that reconnects forever (by default) and logs each state change without secrets.

    ``creds`` is a ``.creds`` file's path or its content (an agent gets the content on stdin);
    ``inbox_prefix`` is the identity's private reply prefix (see :mod:`mtrobot.bus.layout`)."""

    async def _event(state: str) -> None:
        log.info("nats connection", state=state, client=name)
        if on_state is not None:
            await on_state(state)

    async def _disconnected() -> None:
        await _event("disconnected")

    async def _reconnected() -> None:
        await _event("reconnected")

    async def _error(exc: Exception) -> None:
        log.warning("nats error", client=name, error=str(exc))

    options: dict[str, Any] = {}
    if user_credentials is not None:
        options["user"], options["password"] = user_credentials
    if creds is not None:
        options["user_credentials"] = RawCredentials(creds) if "BEGIN NATS USER JWT" in creds else creds
    if inbox_prefix is not None:
        options["inbox_prefix"] = inbox_prefix
    return await nats.connect(
        url,
        name=name,
        connect_timeout=connect_timeout,
        allow_reconnect=allow_reconnect,
        max_reconnect_attempts=max_reconnect_attempts,
        reconnect_time_wait=0.5,
        disconnected_cb=_disconnected,
        reconnected_cb=_reconnected,
        error_cb=_error,
        **options,
    )


STREAMS: tuple[StreamConfig, ...] = (
    StreamConfig(
        name=subjects.ORDERS_STREAM,
        subjects=subjects.ORDERS_SUBJECTS,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=7 * DAY,
        max_bytes=256 * 1024**2,
        max_msg_size=64 * 1024,
        discard=DiscardPolicy.OLD,
        # Publishing with a Nats-Msg-Id header deduplicates resubmissions inside this window.
        duplicate_window=120.0,
    ),
    StreamConfig(
        name=subjects.AUDIT_STREAM,
        subjects=subjects.AUDIT_SUBJECTS,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=90 * DAY,
        max_bytes=1024**3,
        max_msg_size=1024 * 1024,
        discard=DiscardPolicy.OLD,
    ),
    StreamConfig(
        name=subjects.DEAD_LETTER_STREAM,
        subjects=subjects.DEAD_LETTER_SUBJECTS,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=30 * DAY,
        max_bytes=256 * 1024**2,
        max_msgs_per_subject=100_000,
        max_msg_size=128 * 1024,
        discard=DiscardPolicy.OLD,
        duplicate_window=120.0,
    ),
    StreamConfig(
        name=subjects.FILLS_STREAM,
        subjects=subjects.FILLS_SUBJECTS,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=30 * DAY,
        max_bytes=1024**3,
        max_msg_size=64 * 1024,
        discard=DiscardPolicy.OLD,
        # The connector publishes each fill with Nats-Msg-Id fill-{account}-{deal}: a replay is one message.
        duplicate_window=120.0,
    ),
)

BUCKETS: tuple[KeyValueConfig, ...] = (
    KeyValueConfig(
        bucket=subjects.SNAPSHOTS_BUCKET,
        description="latest AccountSnapshot per account",
        history=1,
        max_value_size=1024 * 1024,
        max_bytes=256 * 1024**2,
        storage=StorageType.FILE,
        # kv.get through the direct-get API names the key in the subject, so an agent's bus account can
        # be allowed its own key alone.
        direct=True,
    ),
    KeyValueConfig(
        bucket=subjects.HUB_BUCKET,
        description="central configuration, one key per service",
        history=20,
        max_value_size=256 * 1024,
        max_bytes=64 * 1024**2,
        storage=StorageType.FILE,
        # Clients follow their key without a consumer: a direct get of the current value, then every
        # stored change republished with its revision (an agent's bus account may make no consumer).
        direct=True,
        republish=RePublish(src=f"$KV.{subjects.HUB_BUCKET}.>", dest=f"{subjects.HUB_STORED_PREFIX}>"),
    ),
    KeyValueConfig(
        bucket=subjects.REGISTRY_BUCKET,
        description="running service instances, one heartbeat entry each; expires when it stops",
        history=1,
        # Entries are re-put every few seconds; an instance that dies without saying goodbye disappears.
        ttl=REGISTRY_TTL_S,
        max_value_size=4 * 1024,
        max_bytes=16 * 1024**2,
        storage=StorageType.FILE,
    ),
)


async def provision(js: JetStreamContext) -> list[str]:
    """Create or update every stream and bucket; safe to run any number of times. Returns their names."""
    done: list[str] = []
    for stream in STREAMS:
        try:
            await js.stream_info(stream.name or "")
            await js.update_stream(stream)
        except NotFoundError:
            await js.add_stream(stream)
        done.append(f"stream {stream.name}")
    for bucket in BUCKETS:
        try:
            await js.key_value(bucket.bucket)
        except (NotFoundError, BadRequestError):
            await js.create_key_value(bucket)
        if bucket.direct or bucket.republish:  # a bucket made before: turn on what agents read it by
            info = await js.stream_info(f"KV_{bucket.bucket}")
            if bool(info.config.allow_direct) != bucket.direct or _route(info.config.republish) != _route(
                bucket.republish
            ):
                info.config.allow_direct = bucket.direct
                info.config.republish = bucket.republish
                await js.update_stream(info.config)
        done.append(f"kv {bucket.bucket}")
    return done


def _route(republish: RePublish | None) -> tuple[str | None, str | None] | None:
    return None if republish is None else (republish.src, republish.dest)


ORDER_CONSUMER_ACK_WAIT_S = 30.0


def order_consumer_config(account: str, ack_wait_s: float = ORDER_CONSUMER_ACK_WAIT_S) -> ConsumerConfig:
    """The durable pull consumer through which one account's agent takes its orders, in publish order."""
    from mtrobot.bus.layout import agent_consumer

    return ConsumerConfig(
        durable_name=agent_consumer(account),
        filter_subject=subjects.orders_submitted_filter(account),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait_s,
        max_deliver=-1,
        max_ack_pending=256,
    )


async def ensure_order_consumer(js: JetStreamContext, account: str) -> None:
    """Create the account's ORDERS consumer unless it exists (the supervisor does this, never an agent)."""
    from mtrobot.bus.layout import agent_consumer

    try:
        await js.consumer_info(subjects.ORDERS_STREAM, agent_consumer(account))
    except NotFoundError:
        await js.add_consumer(subjects.ORDERS_STREAM, order_consumer_config(account))


async def rewind_to_ack_floor(nc: Client, subject: str, timeout: float) -> int:
    """Reset a consumer to its ack floor (``$JS.API.CONSUMER.RESET``, nats-server 2.14+; ``subject`` from
    :func:`mtrobot.bus.layout.order_consumer_reset`): its unacknowledged messages are forgotten as delivered
    and come again at once, in stream order, with every later one. Returns the stream sequence it delivers
    from next. Raises when the server refuses (an older server, no permission) or does not answer in time."""
    reply = await nc.request(subject, b"", timeout=timeout)
    answer = json.loads(reply.data)
    if "error" in answer:
        raise APIError.from_error(answer["error"])
    return int(answer.get("reset_seq") or 0)


def own_key_value(js: JetStreamContext, bucket: str) -> KeyValue:
    """A bucket handle without ``STREAM.INFO`` (an agent may not read the bucket's stream, only its key);
    the bucket must have been created with ``direct=True``."""
    return KeyValue(name=bucket, stream=f"KV_{bucket}", pre=f"$KV.{bucket}.", js=js, direct=True)
