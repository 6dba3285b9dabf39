"""Reading the dead letter: what an operator lists with ``mtrobot deadletter list --account ID``."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from nats.aio.client import Client
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from mtrobot.bus import subjects

from .intake import DeadLetter


async def list_dead_letters(nc: Client, account: str, limit: int = 100) -> list[DeadLetter]:
    """The account's last ``limit`` dead letters, oldest first (an empty list when there are none)."""
    js = nc.jetstream(timeout=5)
    subject = subjects.dead_letter_orders(account)
    try:
        info = await js.stream_info(subjects.DEAD_LETTER_STREAM, subjects_filter=subject)
    except NotFoundError:
        return []
    total = (info.state.subjects or {}).get(subject, 0)
    if total == 0:
        return []
    sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    letters: list[DeadLetter] = []
    try:
        while len(letters) < total:
            msg = await sub.next_msg(timeout=5)
            with contextlib.suppress(ValueError):
                letters.append(DeadLetter.model_validate_json(msg.data))
            pending = msg.metadata.num_pending if msg.metadata else 0
            if pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return letters[-limit:] if limit > 0 else letters


def render(letters: Sequence[DeadLetter]) -> list[str]:
    """One line per letter for a person: when, stream sequence, size, order id, why."""
    lines = []
    for d in letters:
        order = d.order_id or "-"
        when = d.ts.strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{when}  seq {d.stream_seq}  {d.size} bytes  order {order}  {d.reason}")
    return lines
