"""Reliable listings of a KV bucket, read from its stream.

nats-py's ``kv.keys()`` and ``kv.history()`` end at a "no more pending" marker that can arrive before the
entries themselves (it compares consumer info with messages not yet handed to the callback), so under
load they return nothing although entries exist. These helpers ask the stream how many messages a subject
holds first, and read exactly those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, RawStreamMsg

DELETE_OPERATIONS = frozenset({"DEL", "PURGE"})


def is_deletion(headers: Mapping[str, str] | None) -> bool:
    """A delete or purge marker, by the client (KV-Operation) or by the server (Nats-Marker-Reason)."""
    if not headers:
        return False
    return headers.get("KV-Operation") in DELETE_OPERATIONS or "Nats-Marker-Reason" in headers


def _names(bucket: str) -> tuple[str, str]:
    return f"KV_{bucket}", f"$KV.{bucket}."


async def live_entries(js: JetStreamContext, bucket: str) -> list[tuple[str, RawStreamMsg]]:
    """(key, last message) of every key of ``bucket`` whose last operation is a put, sorted by key."""
    stream, prefix = _names(bucket)
    info = await js.stream_info(stream, subjects_filter=f"{prefix}>")
    found = []
    for subject in sorted(info.state.subjects or {}):
        try:
            msg = await js.get_msg(stream, subject=subject)
        except nats.js.errors.NotFoundError:  # expired or purged since the listing
            continue
        if not is_deletion(msg.headers):
            found.append((subject[len(prefix) :], msg))
    return found


async def last_entry(
    js: JetStreamContext, bucket: str, key: str, *, direct: bool = False
) -> RawStreamMsg | None:
    """The last message of ``key`` (a put or a deletion marker), None if the stream holds none.

    ``direct``: through the direct-get API, which names the key in the subject (so an agent's bus account
    can be allowed its own keys alone); the bucket must allow direct gets."""
    stream, prefix = _names(bucket)
    try:
        return await js.get_msg(stream, subject=f"{prefix}{key}", direct=direct)
    except nats.js.errors.NotFoundError:
        return None


async def key_history(js: JetStreamContext, bucket: str, key: str, timeout: float = 5.0) -> list[Msg]:
    """Every message the stream still holds for ``key``, oldest first."""
    stream, prefix = _names(bucket)
    subject = f"{prefix}{key}"
    info = await js.stream_info(stream, subjects_filter=subject)
    if not (info.state.subjects or {}).get(subject):
        return []
    sub = await js.subscribe(subject, stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    try:
        messages: list[Msg] = []
        async with asyncio.timeout(timeout):
            while True:
                msg = await sub.next_msg(timeout=timeout)
                messages.append(msg)
                if msg.metadata.num_pending == 0:
                    return messages
    finally:
        await sub.unsubscribe()
