"""Named crash points on the order path, for the crash test: ``MTROBOT_FAILPOINTS="after_send:3"`` makes the
process SIGKILL itself the 3rd time it passes ``after_send``. Unset (always, in production) they cost one
dictionary lookup. A real SIGKILL, not an exception: nothing in the process gets to clean up."""

from __future__ import annotations

import os
import signal

POINTS = (
    "after_admit",  # journal has the order as received, nothing else done
    "after_intent",  # intent to send committed, order_send not called yet
    "after_send",  # the broker answered, the answer not yet recorded
    "after_record",  # outcome recorded in the journal, events not yet published
    "after_publish",  # events published, JetStream message not yet acknowledged
)
RECORDER_POINTS = ("recorder_after_insert",)  # a batch in executions, not yet acknowledged on the bus


class Failpoints:
    def __init__(self, spec: str | None = None, points: tuple[str, ...] = POINTS) -> None:
        spec = os.environ.get("MTROBOT_FAILPOINTS", "") if spec is None else spec
        self._left: dict[str, int] = {}
        for item in filter(None, (p.strip() for p in spec.split(","))):
            name, _, count = item.partition(":")
            if name not in points:
                raise ValueError(f"unknown failpoint {name!r}; known: {', '.join(points)}")
            self._left[name] = int(count or 1)

    def hit(self, name: str) -> None:
        left = self._left.get(name)
        if left is None:
            return
        left -= 1
        self._left[name] = left
        if left <= 0:
            os.kill(os.getpid(), signal.SIGKILL)
