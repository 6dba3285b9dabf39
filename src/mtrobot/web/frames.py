"""One WebSocket frame per snapshot for every socket: written straight to each socket's transport.

A server's frames are not masked, so the frame of a snapshot (its header and its UTF-8 text) is the same
bytes for every socket that watches the account: it is built once (:func:`text_frame`) and written as it is.
Through the ASGI path each socket's message cost a task wake-up, Starlette's and uvicorn's send, the UTF-8
encoding and the frame's serialisation again: at 1,000 sockets that, not the socket writes, was most of the
web worker's fan-out time.

The direct write is taken only when it is safe (:meth:`DirectFrames.write`): the socket is open, no close
was sent or received, and its transport is not paused (its buffer under the high-water mark, i.e. the client
reads). Otherwise the caller falls back to the ASGI send, which waits until the transport drains, so a slow
client still holds one pending message per account and gets the newest (:class:`mtrobot.web.stream.Watcher`).
Whole frames only, so uvicorn's own pings and the close interleave between them, never inside one.

It needs uvicorn's ``websockets-sansio`` protocol (pinned, and the one ``mtrobot web`` selects): the
:class:`RawSocketAccess` middleware finds it behind the ASGI ``send``; with any other server or protocol
there is none, and every message takes the ASGI path as before.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.frames import Frame, Opcode
from websockets.protocol import State

try:  # uvicorn's protocol class, to recognise it behind ``send``
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # pragma: no cover - uvicorn is a dependency; another server simply has no direct path
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]

SCOPE_KEY = "mtrobot.ws_protocol"


def text_frame(text: str) -> bytes:
    """A final, unmasked, uncompressed text frame (valid also where per-message deflate was agreed: a
    message may always be sent uncompressed, RFC 7692 section 6)."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


class DirectFrames:
    """Writes whole frames to one socket's transport while that is safe; ``write`` says whether it did."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol

    def write(self, frame: bytes) -> bool:
        p = self._protocol
        if p.close_sent or p.disconnected or not p.writable.is_set() or p.conn.state is not State.OPEN:
            return False
        transport = p.transport
        if transport.is_closing():
            return False
        transport.write(frame)
        return True


def direct_frames(scope: Scope) -> DirectFrames | None:
    """The direct path of the socket of ``scope``, when the server offers one."""
    protocol = scope.get(SCOPE_KEY)
    return DirectFrames(protocol) if protocol is not None else None


class RawSocketAccess:
    """ASGI middleware: for a WebSocket served by uvicorn's ``websockets-sansio`` protocol, keeps that
    protocol in the scope (``send`` is its bound method) for :func:`direct_frames`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and WebSocketsSansIOProtocol is not None:
            protocol = getattr(send, "__self__", None)
            if isinstance(protocol, WebSocketsSansIOProtocol):
                scope = {**scope, SCOPE_KEY: protocol}
        await self.app(scope, receive, send)
