"""Server side of one client connection, whatever carries it (TCP or in process).

It decodes a frame, runs a terminal call or an admin operation, and encodes the answer. Nothing a client
sends can break it: undecodable frames, wrong types and unknown operations all get an MT5-style error and
the connection (and every other one) keeps working.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.broker.simproto import PROTOCOL_VERSION, FrameError, encode_value, pack_frame, unpack_body
from mtrobot.core.errors import MtrobotError
from mtrobot.logging import get_logger
from mtrobot.sim.broker import AdminApi, SimBroker
from mtrobot.sim.session import LoseReply, Session, safe_call

log = get_logger(__name__)

INVALID = (mt5.RES_E_INVALID_PARAMS, "Terminal: Invalid params")
BAD_VERSION = (
    mt5.RES_E_INVALID_VERSION,
    "Terminal: Incompatible versions, please install the latest version of Terminal and Python module",
)
INTERNAL = (mt5.RES_E_FAIL, "Terminal: Call failed")
NO_IPC = (mt5.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")


@dataclass(frozen=True)
class Answer:
    frame: bytes | None
    close: bool = False
    """Close the connection after sending ``frame`` (if any)."""
    unprocessed: bool = False
    """The request was not processed (the connection was already dead)."""


def _reply(request_id: int, result: Any, error: tuple[int, str]) -> bytes:
    return pack_frame({"v": PROTOCOL_VERSION, "id": request_id, "r": encode_value(result), "e": list(error)})


class Connection:
    def __init__(self, broker: SimBroker, admin: AdminApi, admin_token: str | None = None) -> None:
        self.broker = broker
        self.admin = admin
        self._admin_token = admin_token
        self.session: Session | None = None
        self.closed = False
        self.on_drop: list[Any] = []
        self._last_seen = time.monotonic()

    def _new_session(self, terminal: dict[str, Any]) -> Session:
        if self.session is not None:
            self.session.on_close = None
            self.session.close()
        flags = {
            k: bool(terminal.get(k, d)) for k, d in (("algo_trading", True), ("tradeapi_disabled", False))
        }
        session = self.broker.new_session(**flags)
        session.on_close = self._session_dropped
        self.session = session
        return session

    def _session_dropped(self) -> None:
        """The server dropped the session (admin drop, maintenance): the connection goes with it."""
        self.closed = True
        for callback in self.on_drop:
            callback()

    def idle_expired(self) -> bool:
        """No complete request for longer than the server's inactivity limit (30 s by default), with or
        without a session: a silent or trickling client cannot hold a connection."""
        session = self.session
        if session is not None:
            return session.idle_for() > session.inactivity_limit()
        return time.monotonic() - self._last_seen > self.broker.default_inactivity_s

    def shutdown(self) -> None:
        self.closed = True
        if self.session is not None:
            self.session.on_close = None
            self.session.close()

    async def handle(self, body: bytes) -> Answer:
        self._last_seen = time.monotonic()
        try:
            message = unpack_body(body)
        except FrameError:
            return Answer(_reply(0, None, INVALID))
        request_id = message.get("id")
        if not isinstance(request_id, int) or isinstance(request_id, bool) or not 0 <= request_id < 2**63:
            request_id = 0
        if not self.closed and self.idle_expired():
            self.shutdown()
        if self.closed:  # answered so the client knows the request was certainly not executed
            gone = {"v": PROTOCOL_VERSION, "id": request_id, "r": None, "e": list(NO_IPC), "gone": True}
            return Answer(pack_frame(gone), close=True, unprocessed=True)
        if message.get("v") != PROTOCOL_VERSION:
            return Answer(_reply(request_id, None, BAD_VERSION))
        kind = message.get("t")
        try:
            if kind == "hello":
                terminal = message.get("k")
                self._new_session(terminal if isinstance(terminal, dict) else {})
                return Answer(_reply(request_id, {"protocol": PROTOCOL_VERSION}, (1, "Success")))
            if kind == "call":
                return await self._call(request_id, message)
            if kind == "admin":
                return self._admin(request_id, message)
        except Exception:
            log.exception("simbroker: request failed", kind=str(kind)[:16])
            return Answer(_reply(request_id, None, INTERNAL))
        return Answer(_reply(request_id, None, INVALID))

    async def _call(self, request_id: int, message: dict[str, Any]) -> Answer:
        op, args, kwargs = message.get("op"), message.get("a", []), message.get("k", {})
        if not isinstance(op, str) or not isinstance(args, list) or not isinstance(kwargs, dict):
            return Answer(_reply(request_id, None, INVALID))
        if not all(isinstance(k, str) for k in kwargs):
            return Answer(_reply(request_id, None, INVALID))
        session = self.session or self._new_session({})
        server = session.server
        if server is not None and server.faults.latency_ms:
            await asyncio.sleep(server.faults.latency_ms / 1000)
        try:
            result, error = safe_call(session, op, args, kwargs)
        except LoseReply as lost:
            log.info("simbroker: reply lost on purpose", mode=lost.mode)
            if lost.mode == "drop":
                self.shutdown()
                return Answer(None, close=True)
            return Answer(None)
        return Answer(_reply(request_id, result, error))

    def _admin(self, request_id: int, message: dict[str, Any]) -> Answer:
        op, kwargs = message.get("op"), message.get("k", {})
        if self._admin_token is not None:
            token = message.get("token")
            if not isinstance(token, str) or not hmac.compare_digest(token, self._admin_token):
                return Answer(_reply(request_id, None, (mt5.RES_E_AUTH_FAILED, "admin: invalid token")))
        if (
            not isinstance(op, str)
            or not isinstance(kwargs, dict)
            or not all(isinstance(k, str) for k in kwargs)
        ):
            return Answer(_reply(request_id, None, INVALID))
        try:
            result = self.admin.call(op, kwargs)
        except (MtrobotError, TypeError, ValueError, OverflowError) as exc:
            return Answer(_reply(request_id, None, (mt5.RES_E_INVALID_PARAMS, str(exc)[:300])))
        return Answer(_reply(request_id, result, (1, "Success")))
