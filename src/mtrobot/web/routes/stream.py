"""``/api/v1/stream``: a WebSocket with the caller's accounts' latest snapshots at once, then each new one.

Messages (JSON text): ``{"type": "hello", "accounts": [{"id", "label"}]}`` first and whenever the caller's
accounts change; ``{"type": "snapshot", "account", "seq", "snapshot": AccountSnapshot}``; and, just before
the server closes, ``{"type": "error", "code", "detail"}`` (close code 4401: sign in again; 4403: refused).

Only the caller's own accounts are ever sent: the account set comes from the database for the caller's trader
and is checked again every few seconds (a removed account, a signed-out session or a revoked token stops the
stream). A client that cannot keep up gets the newest snapshot per account, never a backlog; one that does not
read for ``STREAM_SEND_TIMEOUT_S`` (20 s, checked each second) is disconnected and gets the newest state when
it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
from collections.abc import Awaitable

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from mtrobot.storage import accounts as account_repo
from mtrobot.web.deps import SESSION_COOKIE, socket_caller
from mtrobot.web.errors import NotAuthenticated, WebError
from mtrobot.web.frames import direct_frames
from mtrobot.web.state import AppState
from mtrobot.web.stream import Watcher

router = APIRouter(tags=["stream"])

CLOSE_SIGN_IN = 4401
CLOSE_REFUSED = 4403


def _caller_accounts(state: AppState, websocket: WebSocket) -> dict[str, str]:
    """The caller's account ids and labels; raises a :class:`WebError` if the caller is not (or no longer)
    allowed to read."""
    with state.sessions() as db:
        caller = socket_caller(db, state, websocket.headers, websocket.cookies)
        return {a.id: a.label for a in account_repo.accounts_of(db, caller.trader_id)}


def _credential_key(websocket: WebSocket) -> str:
    """What decides a socket's caller (its credential, and for a cookie the page's origin), hashed: sockets
    with the same key share one re-check."""
    parts = (websocket.headers.get("authorization", ""), websocket.cookies.get(SESSION_COOKIE, ""),
             websocket.headers.get("origin", ""), websocket.headers.get("host", ""))  # fmt: skip
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


async def _refuse(websocket: WebSocket, exc: WebError) -> None:
    code = CLOSE_SIGN_IN if isinstance(exc, NotAuthenticated) else CLOSE_REFUSED
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps({"type": "error", "code": exc.code, "detail": exc.detail}))
        await websocket.close(code=code)


def _hello(accounts: dict[str, str]) -> str:
    return json.dumps({"type": "hello", "accounts": [{"id": k, "label": v} for k, v in accounts.items()]})


class StreamSession:
    """One open socket: a sender, a reader (to notice the client leaving) and a periodic re-check."""

    def __init__(self, state: AppState, websocket: WebSocket, accounts: dict[str, str]) -> None:
        self.state = state
        self.websocket = websocket
        self.accounts = accounts
        self.watcher = Watcher(direct_frames(websocket.scope))
        self.send_began: float | None = None
        """When the send under way began (loop time); the app's :class:`SendWatchdog` reads it."""
        self._sender: asyncio.Task[None] | None = None
        self._expired = False

    async def run(self) -> None:
        feed = self.state.stream_source
        try:
            self.watcher.notice(_hello(self.accounts))
            await feed.fill(self.accounts)
            feed.feed.watch(self.watcher, self.accounts)
            self._sender = asyncio.create_task(self._send(), name="stream-send")
            tasks = [
                self._sender,
                asyncio.create_task(self._read(), name="stream-read"),
                asyncio.create_task(self._recheck(), name="stream-recheck"),
            ]
            self.state.stream_sends.add(self)
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.state.stream_sends.discard(self)
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            if self._expired:
                await self._close_quietly(1013)  # "try again later": the client was not reading
        finally:
            feed.feed.unwatch(self.watcher)

    def send_expired(self) -> None:
        """The watchdog's call: a send has waited ``STREAM_SEND_TIMEOUT_S`` for the client to read."""
        self._expired = True
        if self._sender is not None:
            self._sender.cancel()

    async def _send(self) -> None:
        clock = asyncio.get_running_loop().time
        while True:
            for text in await self.watcher.next():
                self.send_began = clock()  # no timer per message: the app's watchdog reads this
                try:
                    await self.websocket.send_text(text)
                except (WebSocketDisconnect, RuntimeError, OSError):
                    return
                finally:
                    self.send_began = None

    async def _read(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return

    async def _recheck(self) -> None:
        period = self.state.options.stream_recheck_s
        key = _credential_key(self.websocket)

        def check() -> Awaitable[dict[str, str]]:
            return run_in_threadpool(_caller_accounts, self.state, self.websocket)

        await asyncio.sleep(random.uniform(0.5, 1.0) * period)  # sockets opened together spread out
        while True:
            try:
                accounts = await self.state.stream_checks.run(key, period / 2, check)
            except WebError as exc:
                await _refuse(self.websocket, exc)
                return
            if accounts != self.accounts:
                self.accounts = accounts
                self.state.stream_source.feed.watch(self.watcher, accounts)  # a removed one stops here
                self.watcher.notice(_hello(accounts))
                await self.state.stream_source.fill(accounts)
            await asyncio.sleep(period)

    async def _close_quietly(self, code: int) -> None:
        # Bounded: the close frame waits behind the same full buffer that stopped the sends.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5.0):
                await self.websocket.close(code=code)


@router.websocket("/stream")
async def stream(websocket: WebSocket) -> None:
    """The live stream (see the module docstring for its messages)."""
    state: AppState = websocket.app.state.mtrobot
    await websocket.accept()
    try:
        accounts = await run_in_threadpool(_caller_accounts, state, websocket)
    except WebError as exc:
        await _refuse(websocket, exc)
        return
    await StreamSession(state, websocket, accounts).run()
