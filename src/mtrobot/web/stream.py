"""Live snapshots for browsers: the newest AccountSnapshot of each account, fanned out to its watchers.

Every web worker subscribes to ``snapshot.*`` (no queue group: each worker serves its own sockets) and keeps
only the newest snapshot per account, encoded once as the text every socket sends and once as its WebSocket
frame (:mod:`mtrobot.web.frames`). A watcher (one socket) whose client keeps up gets that frame written to
its socket at once; otherwise it holds at most one pending message per account it watches: a newer snapshot
replaces an unsent older one, so a slow client gets the newest state and never a growing queue. Snapshots
that are not newer than the one held (a re-delivery, an agent's echo) are dropped by ``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import ValidationError

from mtrobot.bus import subjects
from mtrobot.bus.codec import decode
from mtrobot.core.events import AccountSnapshot
from mtrobot.logging import get_logger
from mtrobot.web.frames import DirectFrames, text_frame

log = get_logger(__name__)


def snapshot_message(snapshot: AccountSnapshot) -> str:
    """The stream's message for one snapshot (what the browser receives)."""
    body = {"type": "snapshot", "account": snapshot.account, "seq": snapshot.seq}
    return json.dumps(body | {"snapshot": snapshot.model_dump(mode="json")}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Latest:
    seq: int
    text: str
    snapshot: AccountSnapshot
    frame: bytes
    """``text`` as a WebSocket frame, the same bytes for every socket."""


class Watcher:
    """One client's mailbox: the newest unsent message per account, nothing older.

    With ``direct`` (the socket's frame writer), :meth:`flush` writes what waits straight to the socket
    when nothing is being sent before it (the sender task holds nothing from :meth:`next`, no notice
    waits) and the socket takes it; what it does not take waits here for the sender task, which it wakes."""

    def __init__(self, direct: DirectFrames | None = None) -> None:
        self._pending: dict[str, tuple[str, bytes | None]] = {}
        self._notice: str | None = None
        self._wake = asyncio.Event()
        self._sending = False  # the sender holds messages from ``next`` it has not finished sending
        self._direct = direct
        self.replaced = 0
        """Messages overwritten before they were sent (the client was slower than the snapshots)."""
        self.written = 0
        """Messages written straight to the socket by :meth:`flush` (not through the sender task)."""

    def put(self, account: str, text: str, frame: bytes | None = None, *, wake: bool = True) -> None:
        """Hold ``text`` (its ``frame``: the same as a WebSocket frame) as the account's newest; ``wake``:
        :meth:`flush` now, else the caller flushes later (the feed, once per burst of snapshots)."""
        if account in self._pending:
            self.replaced += 1
        self._pending[account] = (text, frame)
        if wake:
            self.flush()

    def flush(self) -> None:
        direct = self._direct
        if direct is not None and not self._sending and self._notice is None:
            for account, (_, frame) in list(self._pending.items()):
                if frame is None or not direct.write(frame):
                    break
                del self._pending[account]
                self.written += 1
        if self._pending or self._notice is not None:
            self._wake.set()

    def notice(self, text: str) -> None:
        """A message about the stream itself (the account list): sent before any snapshot waiting now."""
        self._notice = text
        self._wake.set()

    def forget(self, account: str) -> None:
        self._pending.pop(account, None)

    def pending(self) -> int:
        return len(self._pending)

    async def next(self) -> list[str]:
        """Wait for news; returns the notice, then each waiting account's newest message, once. Calling it
        again says the messages it returned were sent."""
        self._sending = False
        await self._wake.wait()
        self._wake.clear()
        self._sending = True
        out = [self._notice] if self._notice is not None else []
        out += (text for text, _ in self._pending.values())
        self._notice = None
        self._pending.clear()
        return out


class SnapshotFeed:
    """The newest snapshot of every account this worker has seen, and which watcher watches which account.

    A snapshot is handed to its watchers at once (``put`` without ``wake``); they are flushed once, on the
    event loop's next turn: a burst of snapshots (every account's, a backlog after a reconnect) costs each
    socket one write of each account's newest, not one wake-up and send per snapshot."""

    def __init__(self) -> None:
        self._latest: dict[str, Latest] = {}
        self._watchers: dict[str, set[Watcher]] = {}
        self._due: set[Watcher] = set()
        self._flush_handle: asyncio.Handle | None = None

    def offer(self, snapshot: AccountSnapshot) -> bool:
        """Keep and fan out ``snapshot`` if it is newer than the one held; ``False`` if it is not."""
        held = self._latest.get(snapshot.account)
        if held is not None and snapshot.seq <= held.seq:
            return False
        text = snapshot_message(snapshot)
        latest = Latest(snapshot.seq, text, snapshot, text_frame(text))
        self._latest[snapshot.account] = latest
        watchers = self._watchers.get(snapshot.account)
        if watchers:
            for watcher in watchers:
                watcher.put(snapshot.account, text, latest.frame, wake=False)
            self._due.update(watchers)
            self._schedule_flush()
        return True

    def _schedule_flush(self) -> None:
        if self._flush_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a plain function's call): flush at once
            self._flush()
            return
        self._flush_handle = loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        due, self._due = self._due, set()
        for watcher in due:
            watcher.flush()

    def latest(self, account: str) -> Latest | None:
        return self._latest.get(account)

    def watch(self, watcher: Watcher, accounts: Iterable[str]) -> None:
        """Watch exactly ``accounts`` (replacing what ``watcher`` watched); the newest of each is queued."""
        wanted = set(accounts)
        for account, watchers in list(self._watchers.items()):
            if account not in wanted and watcher in watchers:
                watchers.discard(watcher)
                watcher.forget(account)
                if not watchers:
                    del self._watchers[account]
        for account in wanted:
            watchers = self._watchers.setdefault(account, set())
            if watcher not in watchers:
                watchers.add(watcher)
                held = self._latest.get(account)
                if held is not None:
                    watcher.put(account, held.text, held.frame)

    def unwatch(self, watcher: Watcher) -> None:
        self.watch(watcher, ())

    def watched(self) -> list[str]:
        return list(self._watchers)

    def watcher_count(self) -> int:
        return len({w for ws in self._watchers.values() for w in ws})

    def written(self) -> int:
        """Messages the current watchers had written straight to their sockets (see :class:`Watcher`)."""
        return sum(w.written for w in {w for ws in self._watchers.values() for w in ws})


class Sending(Protocol):
    """A socket as :class:`SendWatchdog` sees it: when its current send began (``None``: not sending)."""

    send_began: float | None

    def send_expired(self) -> None: ...


class SendWatchdog:
    """One watchdog for every socket's sends, instead of a timer per message: at a thousand sockets, arming
    and cancelling ``asyncio.timeout`` for each message was a large part of a socket's fan-out cost, while a
    send almost never blocks (only when the client stopped reading and its buffer is full). A socket whose
    send began more than ``limit_s`` ago is told so (``send_expired``) within ``period_s``."""

    def __init__(self, limit_s: float, period_s: float = 1.0) -> None:
        self.limit_s = limit_s
        self.period_s = period_s
        self._sockets: set[Sending] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, socket: Sending) -> None:
        self._sockets.add(socket)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="stream-send-watchdog")

    def discard(self, socket: Sending) -> None:
        self._sockets.discard(socket)

    def check(self, now: float) -> None:
        for socket in list(self._sockets):
            began = socket.send_began
            if began is not None and now - began > self.limit_s:
                self._sockets.discard(socket)
                socket.send_expired()

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while self._sockets:
            await asyncio.sleep(self.period_s)
            self.check(loop.time())


T = TypeVar("T")


class SharedChecks:
    """One check per key and period, shared by every socket presenting the same credential: a thousand
    sockets of ten traders cost ten database checks per period, not a thousand. A refusal is shared too."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[float, asyncio.Future[Any]]] = {}

    async def run(self, key: str, ttl_s: float, check: Callable[[], Awaitable[T]]) -> T:
        now = asyncio.get_running_loop().time()
        held = self._held.get(key)
        if held is None or held[0] <= now:
            if len(self._held) > 1024:
                self._held = {k: v for k, v in self._held.items() if v[0] > now}
            held = (now + ttl_s, asyncio.ensure_future(check()))
            self._held[key] = held
        result: T = await asyncio.shield(held[1])
        return result


Fetch = Callable[[str], Awaitable[AccountSnapshot | None]]
"""Reads an account's latest snapshot from KV ``account_snapshots`` (``None`` if it has none)."""


class FeedSubscriber:
    """Feeds a :class:`SnapshotFeed` from the bus: ``snapshot.*`` live, and KV reads to fill gaps."""

    def __init__(self, feed: SnapshotFeed, fetch: Fetch) -> None:
        self.feed = feed
        self._fetch = fetch
        self._sub: Any = None
        self.refused = 0

    async def start(self, nc: Client) -> None:
        self._sub = await nc.subscribe(subjects.snapshot_all(), cb=self._on_message)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_message(self, msg: Msg) -> None:
        try:
            snapshot = decode(AccountSnapshot, msg.data)
        except ValidationError:
            self.refused += 1
            log.warning("unreadable snapshot", subject=msg.subject)
            return
        if msg.subject != subjects.snapshot(snapshot.account):
            # An agent may publish only on its own subject; a snapshot naming another account is refused.
            self.refused += 1
            log.warning("snapshot for another account refused", subject=msg.subject)
            return
        self.feed.offer(snapshot)

    async def fill(self, accounts: Iterable[str], *, force: bool = False) -> None:
        """Read from KV the accounts the feed holds nothing for (all of them with ``force``: after the bus
        came back, snapshots published meanwhile were missed)."""
        for account in accounts:
            if force or self.feed.latest(account) is None:
                try:
                    snapshot = await self._fetch(account)
                except Exception as exc:  # the bus is away: the live subscription catches up later
                    log.info("latest snapshot not readable yet", account=account, error=str(exc))
                    continue
                if snapshot is not None and snapshot.account == account:
                    self.feed.offer(snapshot)
