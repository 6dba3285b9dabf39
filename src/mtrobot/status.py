"""``mtrobot status``: what the bus holds, read through nats-py (no ``nats`` CLI needed)."""

from __future__ import annotations

import asyncio

from rich.console import Console
from rich.table import Table

from mtrobot.bus.connect import BUCKETS, STREAMS, connect
from mtrobot.core.errors import FatalError
from mtrobot.settings import Settings


async def collect_status(url: str, timeout: float) -> list[tuple[str, str, int, int]]:
    """(kind, name, messages, bytes) for every stream and bucket of DESIGN.md 3.2; -1 when missing."""
    nc = await connect(url, "mtrobot-status", allow_reconnect=False, connect_timeout=timeout)
    try:
        js = nc.jetstream(timeout=timeout)
        rows: list[tuple[str, str, int, int]] = []
        names = [("stream", s.name or "") for s in STREAMS] + [("kv", b.bucket) for b in BUCKETS]
        for kind, name in names:
            stream = name if kind == "stream" else f"KV_{name}"
            try:
                info = await js.stream_info(stream)
                rows.append((kind, name, info.state.messages, info.state.bytes))
            except Exception:
                rows.append((kind, name, -1, -1))
        return rows
    finally:
        await nc.close()


async def print_status(settings: Settings, timeout: float) -> int:
    url = settings.discover_nats_url()
    if url is None:
        raise FatalError(
            f"no running mtrobot found for data dir {settings.data_dir} and MTROBOT_NATS_URL unset"
        )
    try:
        rows = await asyncio.wait_for(collect_status(url, timeout), timeout * 3)
    except (TimeoutError, OSError) as exc:
        raise FatalError(f"bus at {url} does not answer: {exc}") from exc
    table = Table(title=f"mtrobot bus {url}")
    for column in ("kind", "name", "messages", "bytes", "state"):
        table.add_column(column)
    for kind, name, messages, size in rows:
        ok = messages >= 0
        table.add_row(kind, name, str(max(messages, 0)), str(max(size, 0)), "ok" if ok else "MISSING")
    Console().print(table)
    from mtrobot.supervisor.runtime.sandbox_status import agents_table  # each agent's isolation

    if (agents := agents_table(settings)) is not None:
        Console().print(agents)
    return 0 if all(r[2] >= 0 for r in rows) else 1
