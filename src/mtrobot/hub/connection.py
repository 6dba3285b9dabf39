"""Connecting to a bus that may not be there yet, quietly, until it is.

nats-py either gives up on the first failed connect or (with unlimited reconnects) retries inside
``connect()`` logging an error every half second. Services that must start without the bus probe the
server's TCP port with backoff instead, and only then hand over to nats-py, whose reconnect logic
takes care of every later outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from nats.aio.client import Client

from mtrobot.bus.connect import connect
from mtrobot.logging import get_logger

log = get_logger(__name__)

DEFAULT_PORT = 4222


def server_addresses(url: str) -> list[tuple[str, int]]:
    """The (host, port) of every server in a comma-separated NATS URL list."""
    addresses = []
    for part in url.split(","):
        parsed = urlsplit(part.strip() if "://" in part else f"nats://{part.strip()}")
        if parsed.hostname:
            addresses.append((parsed.hostname, parsed.port or DEFAULT_PORT))
    return addresses


async def reachable(url: str, timeout: float) -> bool:
    """True when some server of ``url`` accepts a TCP connection within ``timeout``."""
    for host, port in server_addresses(url):
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


async def connect_when_reachable(
    url: str,
    name: str,
    *,
    connect_timeout: float = 2.0,
    first_delay: float = 0.5,
    max_delay: float = 5.0,
    on_state: Callable[[str], Awaitable[None]] | None = None,
    on_first_failure: Callable[[], None] | None = None,
    creds: str | None = None,
    inbox_prefix: str | None = None,
) -> Client:
    """Connect to ``url``, waiting as long as it takes; later outages are handled by reconnecting.

    Waits between attempts grow from ``first_delay`` to ``max_delay`` with jitter, so a fleet of services
    does not reconnect in lockstep. ``on_first_failure`` is called once if the first attempt fails.
    Cancel the caller's task to give up.
    """
    delay = first_delay
    attempt = 0
    while True:
        if await reachable(url, connect_timeout):
            try:
                return await asyncio.wait_for(
                    connect(
                        url,
                        name,
                        connect_timeout=connect_timeout,
                        on_state=on_state,
                        creds=creds,
                        inbox_prefix=inbox_prefix,
                    ),
                    connect_timeout * 3,
                )
            except Exception as exc:  # refused handshake, auth, TLS: keep trying, say why once
                if attempt == 0:
                    log.warning("bus refused the connection", client=name, error=repr(exc))
        elif attempt == 0:
            log.warning("bus unreachable, retrying in the background", client=name)
        if attempt == 0 and on_first_failure is not None:
            on_first_failure()
        attempt += 1
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))
        delay = min(max_delay, delay * 2)


async def stop_task(task: asyncio.Task[None] | None, grace: float = 0.5) -> None:
    """Cancel ``task`` and wait until it has ended.

    ``asyncio.wait_for`` on Python 3.11 can swallow a cancellation that races with its own result (nats-py
    uses it inside watchers and requests), so cancel again until the task is really done.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=grace)
    if not task.cancelled() and task.exception() is not None:
        log.warning("task ended with an error", task=task.get_name(), error=repr(task.exception()))
