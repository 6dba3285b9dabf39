"""``mtrobot status``: what the bus holds, read through nats-py (no ``nats`` CLI needed)."""

from __future__ import annotations

import asyncio

import nats.errors
from rich.console import Console
from rich.table import Table

from mtrobot.bus import identity, layout
from mtrobot.bus.connect import BUCKETS, STREAMS, connect
from mtrobot.core.errors import FatalError
from mtrobot.settings import Settings


async def collect_status(
    url: str, timeout: float, creds: str | None = None
) -> list[tuple[str, str, int, int]]:
    """(kind, name, messages, bytes) for every stream and bucket of DESIGN.md 3.2; -1 when missing."""
    nc = await connect(url, "mtrobot-status", allow_reconnect=False, connect_timeout=timeout, creds=creds)
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


def operator_creds(settings: Settings) -> str | None:
    """``MTROBOT_NATS_CREDS`` on an external bus, else the operator's ``DATA_DIR/run/nats-admin.creds``."""
    if settings.nats_creds is not None:
        return str(settings.nats_creds)
    path = identity.creds_path(settings, layout.ADMIN)
    return str(path) if path.exists() else None


async def print_status(settings: Settings, timeout: float) -> int:
    url = settings.discover_nats_url()
    if url is None:
        raise FatalError(
            f"no running mtrobot found for data dir {settings.data_dir} and MTROBOT_NATS_URL unset"
        )
    creds = operator_creds(settings)
    try:
        rows = await asyncio.wait_for(collect_status(url, timeout, creds), timeout * 3)
    except (TimeoutError, OSError) as exc:
        raise FatalError(f"bus at {url} does not answer: {exc}") from exc
    except nats.errors.Error as exc:
        raise FatalError(
            f"bus at {url} refused mtrobot status ({exc}); credentials: {creds or 'none'}"
        ) from exc
    console = Console()
    warning = identity.external_warning(settings)
    if warning:
        console.print(f"[bold red]WARNING[/]: {warning}", soft_wrap=True)
    else:
        console.print(f"bus identity: embedded JWT accounts, operator credentials {creds}", soft_wrap=True)
    table = Table(title=f"mtrobot bus {url}")
    for column in ("kind", "name", "messages", "bytes", "state"):
        table.add_column(column)
    for kind, name, messages, size in rows:
        ok = messages >= 0
        table.add_row(kind, name, str(max(messages, 0)), str(max(size, 0)), "ok" if ok else "MISSING")
    console.print(table)
    from mtrobot.supervisor.runtime.sandbox_status import agents_table  # each agent's isolation

    if (agents := agents_table(settings)) is not None:
        console.print(agents)
    return 0 if all(r[2] >= 0 for r in rows) else 1
