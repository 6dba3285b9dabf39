"""Taking messages from a JetStream pull consumer without holding one that has arrived.

nats-py's ``fetch(n)`` for ``n > 1``, once it has a message, waits for the other ``n - 1`` until its
timeout runs out or a status message comes. A waiting request for several messages ends at the server
only when it is full or expires, so when no status comes for the fetch's own request, the message it holds
waits: the expiry (``408``) of an earlier fetch's request, left waiting for the rest of its batch, is what
ends it. Seen in ``bench burst`` (50 connectors, nats-py 2.16, nats-server 2.15): in the rounds right
after the first, orders reached the connector 300–485 ms after they were stored.

``fetch(1)`` has no such wait: it returns its message as it comes. So :class:`PullTaker` waits for one
message at a time, and takes more at once only when the stream said they are there (``num_pending`` of the
last message taken), asking for exactly that many: such a request is answered in full at once.
"""

from __future__ import annotations

import contextlib
from typing import Any

from nats.aio.msg import Msg

REST_TIMEOUT_S = 0.1
"""The bound on taking messages the stream said it holds (they are there: it is not a wait for new ones)."""


class PullTaker:
    """The messages of one nats-py pull subscription, as they come, a backlog up to ``batch`` per call."""

    def __init__(self, pull: Any) -> None:
        self.pull = pull
        self._behind = 0
        """How many more the last message taken said were waiting in the stream behind it."""

    async def take(self, batch: int, timeout: float) -> list[Msg]:
        """The next messages: the ones already waiting (up to ``batch``), else the next one to come within
        ``timeout`` (raises ``TimeoutError``) and what waits behind it."""
        msgs: list[Msg] = []
        if self._behind > 0:
            with contextlib.suppress(TimeoutError):  # none came after all: wait for the next one below
                msgs = await self.pull.fetch(min(batch, self._behind), timeout=REST_TIMEOUT_S)
            self._behind = 0
        if not msgs:
            msgs = await self.pull.fetch(1, timeout=timeout)
            more = min(batch - 1, _behind(msgs[-1]))
            if more > 0:
                with contextlib.suppress(TimeoutError):  # what came is kept; the rest is taken next time
                    msgs += await self.pull.fetch(more, timeout=REST_TIMEOUT_S)
        self._behind = _behind(msgs[-1])
        return msgs


def _behind(msg: Msg) -> int:
    meta = msg.metadata
    return int(meta.num_pending or 0) if meta is not None else 0
