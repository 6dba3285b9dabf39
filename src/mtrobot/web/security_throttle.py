"""Throttles against guessing, the client's real address, and the request-body limit.

- :class:`Throttle` counts an attempt *before* it is tried (sign-in, registration, connection test), under
  one lock per process and a row lock in the database, so twenty concurrent guesses are still at most
  ``limit`` guesses; an attempt that succeeded is taken back.
- :func:`client_address` believes ``X-Forwarded-For`` only when the direct peer is a configured proxy
  (``WebOptions.trusted_proxies``), so a client cannot pick a new address per request to dodge a limit.
- :class:`BodyLimit` refuses a request body larger than ``WebOptions.max_body_bytes`` with 413 before it is
  read into memory (by its ``Content-Length``, or while it streams in).
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mtrobot.storage import traders as repo

_GUARD = threading.Lock()
"""Check-and-count is one step per process (SQLite has no row locks; PostgreSQL's FOR UPDATE covers the
replicas). Each caller takes its pooled connection *before* the lock: a thread waiting for a connection
while holding it, behind a burst of sign-ins that each hold one and wait for the lock, would stall them all
until the pool's timeout."""


@dataclass(frozen=True)
class Limit:
    key: str
    limit: int
    window: timedelta


class Refused(Exception):
    """An attempt refused by a throttle: retry after ``retry_after_s``."""

    def __init__(self, key: str, retry_after_s: int) -> None:
        super().__init__(key)
        self.key = key
        self.retry_after_s = retry_after_s


def reserve(db: Session, limits: Sequence[Limit]) -> None:
    """Count one attempt against every limit, or none if one of them refuses (raises :class:`Refused`)."""
    for attempt in range(3):
        db.connection()  # each try starts a transaction: its connection is taken outside the lock
        with _GUARD:
            try:
                for item in limits:
                    until = repo.reserve_attempt(db, item.key, item.limit, item.window)
                    if until is not None:
                        db.rollback()
                        wait = int((_aware(until) - datetime.now(UTC)).total_seconds()) + 1
                        raise Refused(item.key, max(1, wait))
                db.commit()
                return
            except IntegrityError:  # another replica created the same row first: count on top of it
                db.rollback()
                if attempt == 2:
                    raise


def release(db: Session, keys: Iterable[str]) -> None:
    db.connection()
    with _GUARD:
        for key in keys:
            repo.release_attempt(db, key)
        db.commit()


def locked(db: Session, item: Limit) -> bool:
    db.connection()
    with _GUARD:
        return repo.is_locked(db, item.key, item.limit, item.window)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- the client's address --------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(values: Iterable[str]) -> tuple[Network, ...]:
    """``127.0.0.1``, ``10.0.0.0/8``, ``::1``: the proxies whose ``X-Forwarded-For`` is believed."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _in(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(request: Request, proxies: Sequence[Network]) -> str:
    """The peer's address; behind a trusted proxy, the right-most address in ``X-Forwarded-For`` that is
    not itself a trusted proxy (a client can prepend anything, but not what the proxies appended)."""
    peer = request.client.host if request.client else "unknown"
    if not proxies or not _in(peer, proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, proxies):
            return hop if _valid_ip(hop) else peer
    return peer


def _valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# -- the body limit ----------------------------------------------------------------------------------


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes`` (declared or streamed), never read whole first."""

    def __init__(self, app: ASGIApp, max_bytes: Callable[[], int]) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False
            if too_big:
                await _refuse(send, limit)
                return
        seen = 0
        started = refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    if not started and not refused:
                        refused = True
                        await _refuse(send, limit)
                    return {"type": "http.disconnect"}  # the app stops reading; its answer is dropped
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except Exception:
            if not refused:
                raise


async def _refuse(send: Send, limit: int) -> None:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": "Request too large",
        "status": 413,
        "detail": f"the request body is larger than the limit of {limit} bytes",
        "code": "too_large",
        "errors": [],
    }
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": data})
