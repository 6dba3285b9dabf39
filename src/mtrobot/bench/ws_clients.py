"""The fan-out bench's WebSocket clients, in a process of their own (``python -m mtrobot.bench.ws_clients``).

In the bench's own process, a thousand ``websockets`` clients parsing every snapshot's JSON as it arrived
cost about as much CPU as the web worker serving them, on the same event loop that took the arrival time:
a burst of 1,000 messages queued behind the clients' own parsing, and that wait was counted as the
worker's delay. Here each client is a bare :class:`asyncio.Protocol`: the arrival time is read once per
``data_received`` (when the kernel hands the bytes over), frames are split by their headers only, a ping is
answered, and the JSON is decoded after the run. A snapshot's ``ts`` (the publisher's wall clock) and the
arrival time (this process's wall clock) are the same machine's ``CLOCK_REALTIME``.

Protocol with the bench, one JSON line each: stdin ``{"host", "port", "path", "origin", "clients":
[cookie header, ...]}``; stdout ``{"ready": true, "connect_s"}`` once every client has its hello; then stdin
``{"stop": true, "last_seq"}`` (each client gets up to 10 s to receive ``last_seq``); stdout ``{"delays_ms":
[...], "last_seqs": [...], "cpu_s"}`` for the measured part (between ``ready`` and ``stop``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import struct
import sys
import time
from datetime import datetime
from typing import Any

OP_TEXT, OP_CLOSE, OP_PING = 0x1, 0x8, 0x9


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _masked(opcode: int, payload: bytes) -> bytes:
    """A client's frame (clients must mask theirs), payloads under 126 bytes (a pong, a close)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + body


class BareClient(asyncio.Protocol):
    """One WebSocket client: the handshake, then text frames kept as (arrival, payload)."""

    def __init__(self, request: bytes) -> None:
        self._request = request
        self._buffer = b""
        self._upgraded = False
        self.transport: asyncio.Transport | None = None
        self.hello = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.messages: list[tuple[float, bytes]] = []
        self.recording = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self._request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if not self.hello.done():
            self.hello.set_exception(ConnectionError("closed before its hello"))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self._buffer + data if self._buffer else data
        if not self._upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self._buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.hello.set_exception(ConnectionError(buffer[:end].decode("latin-1")))
                self.transport.close()  # type: ignore[union-attr]
                return
            self._upgraded = True
            buffer = buffer[end + 4 :]
        at = 0
        size = len(buffer)
        while size - at >= 2:
            opcode, length = buffer[at] & 0x0F, buffer[at + 1] & 0x7F
            head = 2
            if length == 126:
                if size - at < 4:
                    break
                length, head = struct.unpack_from("!H", buffer, at + 2)[0], 4
            elif length == 127:
                if size - at < 10:
                    break
                length, head = struct.unpack_from("!Q", buffer, at + 2)[0], 10
            if size - at < head + length:
                break
            payload = buffer[at + head : at + head + length]
            at += head + length
            if opcode == OP_TEXT:
                if self.recording:
                    self.messages.append((now, payload))
                elif not self.hello.done() and b'"hello"' in payload[:20]:
                    self.hello.set_result(None)
                else:
                    self.messages.append((now, payload))
            elif opcode == OP_PING:
                self.transport.write(_masked(0xA, payload))  # type: ignore[union-attr]
            elif opcode == OP_CLOSE:
                self.transport.close()  # type: ignore[union-attr]
        self._buffer = buffer[at:]


def _request(host: str, port: int, path: str, origin: str, cookie: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", f"Origin: {origin}",
             f"Cookie: {cookie}"]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _open(loop: asyncio.AbstractEventLoop, host: str, port: int, request: bytes) -> BareClient:
    _, client = await loop.create_connection(lambda: BareClient(request), host, port)
    return client


def _decoded(client: BareClient) -> tuple[list[float], int]:
    delays, last = [], 0
    for arrived, payload in client.messages:
        message = json.loads(payload)
        if message.get("type") == "snapshot":
            sent = datetime.fromisoformat(message["snapshot"]["ts"]).timestamp()
            delays.append((arrived - sent) * 1000)
            last = max(last, int(message["seq"]))
    return delays, last


def _line(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def _run() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    spec = json.loads(await reader.readline())
    host, port = spec["host"], int(spec["port"])
    t0 = time.perf_counter()
    clients: list[BareClient] = []
    cookies = spec["clients"]
    for start in range(0, len(cookies), 50):
        batch = cookies[start : start + 50]
        requests = [_request(host, port, spec["path"], spec["origin"], c) for c in batch]
        clients += await asyncio.gather(*(_open(loop, host, port, r) for r in requests))
    await asyncio.wait_for(asyncio.gather(*(c.hello for c in clients)), 60)
    for c in clients:
        c.messages.clear()
        c.recording = True
    cpu0 = _cpu_s()
    _line({"ready": True, "connect_s": round(time.perf_counter() - t0, 2)})
    stop = json.loads(await reader.readline())
    deadline = loop.time() + 10
    while loop.time() < deadline:
        # Cheap while the run is on: only the last message of each client is decoded to look for the end.
        if all(c.messages and json.loads(c.messages[-1][1]).get("seq") == stop["last_seq"] for c in clients):
            break
        await asyncio.sleep(0.05)
    cpu = _cpu_s() - cpu0
    delays: list[float] = []
    last_seqs = []
    for c in clients:
        got, last = _decoded(c)
        delays += got
        last_seqs.append(last)
        if c.transport is not None:
            c.transport.close()
    _line({"delays_ms": [round(d, 3) for d in delays], "last_seqs": last_seqs, "cpu_s": round(cpu, 3)})


def main() -> None:
    resource_limit = resource.getrlimit(resource.RLIMIT_NOFILE)
    if resource_limit[0] < resource_limit[1]:
        resource.setrlimit(resource.RLIMIT_NOFILE, (resource_limit[1], resource_limit[1]))
    asyncio.run(_run())


if __name__ == "__main__":
    main()
