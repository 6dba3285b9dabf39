"""The bare costs an order stands on, measured in the same run as the order benchmarks, and their floor.

An order published on the bus crosses, once each: a JetStream publish into ``ORDERS`` (its ack), a NATS hop to
the connector and one back with the fill (a request/reply), an ``order_send`` to the broker over TCP, and the
journal's fsync of the intent before the send. The sum of their medians is the floor: what no
implementation on this machine, this bus and this broker can go under.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg
from nats.js.api import StorageType, StreamConfig

from mtrobot.bench.rig import Rig
from mtrobot.broker import constants as mt5
from mtrobot.broker.simclient import open_sim_terminal

BENCH_STREAM = "BENCH_FLOOR"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


async def _until_answered(rig: Rig, subject: str, within_s: float = 10.0) -> None:
    """The responder's interest can reach the requester's side of the server a moment after its flush (seen
    once in a CI run as "no responders"): wait for a first answer, unmeasured, before sampling."""
    import nats.errors

    deadline = time.monotonic() + within_s
    while True:
        try:
            await rig.nc.request(subject, b"warm-up", timeout=2)
            return
        except nats.errors.NoRespondersError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def request_reply_ms(rig: Rig, count: int) -> list[float]:
    """A NATS request/reply round trip on the same server, 200 bytes, a responder on its own connection."""
    from mtrobot.bus.connect import connect

    responder = await connect(rig.url, "bench-echo")

    async def echo(msg: Msg) -> None:
        await msg.respond(msg.data)

    await responder.subscribe("bench.echo", cb=echo)
    await responder.flush()
    try:
        await _until_answered(rig, "bench.echo")
        samples = []
        for _ in range(count):
            t0 = time.perf_counter()
            await rig.nc.request("bench.echo", b"x" * 200, timeout=5)
            samples.append(_ms(t0))
        return samples
    finally:
        await responder.close()


async def publish_ack_ms(rig: Rig, count: int) -> list[float]:
    """A JetStream publish and its ack, into a file-stored stream like ``ORDERS``, 200 bytes."""
    js = rig.nc.jetstream(timeout=5)
    await js.add_stream(StreamConfig(name=BENCH_STREAM, subjects=["benchfloor.>"], storage=StorageType.FILE))
    try:
        samples = []
        for i in range(count):
            t0 = time.perf_counter()
            await js.publish("benchfloor.x", b"x" * 200, headers={"Nats-Msg-Id": f"f{i}"})
            samples.append(_ms(t0))
        return samples
    finally:
        await js.delete_stream(BENCH_STREAM)


async def order_send_ms(rig: Rig, count: int) -> list[float]:
    """``order_send`` of a 0.01-lot market order straight to the simulator over TCP, on its own account."""
    password = "Bench-" + secrets.token_urlsafe(8)
    login = await rig.new_sim_login(password)
    terminal = open_sim_terminal(rig.sim_host, rig.sim_port)
    if not await terminal.initialize(login=login, password=password, server=rig.server):
        raise RuntimeError(f"bench terminal login failed: {await terminal.last_error()}")
    pace = 1.0 / (0.9 * rig.rate_limit) if rig.rate_limit else 0.0  # under the broker's limit, not measured
    try:
        samples = []
        for i in range(count):
            await asyncio.sleep(pace)
            tick = await terminal.symbol_info_tick("EURUSD")
            assert tick is not None
            buy = i % 2 == 0
            request: dict[str, Any] = {
                "action": mt5.TRADE_ACTION_DEAL,
                "symbol": "EURUSD",
                "volume": 0.01,
                "type": mt5.ORDER_TYPE_BUY if buy else mt5.ORDER_TYPE_SELL,
                "price": tick.ask if buy else tick.bid,
                "deviation": 20,
                "type_filling": mt5.ORDER_FILLING_FOK,
            }
            t0 = time.perf_counter()
            result = await terminal.order_send(request)
            samples.append(_ms(t0))
            if result is None or result.retcode != mt5.TRADE_RETCODE_DONE:
                raise RuntimeError(f"bench order_send refused: {result or await terminal.last_error()}")
        return samples
    finally:
        await terminal.shutdown()


def fsync_ms(rig: Rig, count: int) -> list[float]:
    """A small write and fsync in the data dir, where the connectors keep their journals."""
    path = rig.data_dir / "connector" / "fsync-probe"
    path.parent.mkdir(parents=True, exist_ok=True)
    return append_fsync_ms(path, 200, count)


def append_fsync_ms(path: Path, size: int, count: int) -> list[float]:
    """``count`` appends of ``size`` bytes to a new file at ``path``, each fsynced; the file is removed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        samples = []
        for _ in range(count):
            t0 = time.perf_counter()
            os.write(fd, b"x" * size)
            os.fsync(fd)
            samples.append(_ms(t0))
        return samples
    finally:
        os.close(fd)
        path.unlink()


async def measure_floor(rig: Rig, count: int = 300) -> dict[str, float]:
    """Each bare cost's median and p99 (ms), and ``floor_ms``: the sum of the medians."""
    costs = {
        "nats_request_reply": await request_reply_ms(rig, count),
        "jetstream_publish_ack": await publish_ack_ms(rig, count),
        "sim_order_send": await order_send_ms(rig, count),
        "journal_fsync": fsync_ms(rig, count),
    }
    out: dict[str, float] = {}
    for name, samples in costs.items():
        out[f"{name}_p50_ms"] = round(statistics.median(samples), 3)
        out[f"{name}_p99_ms"] = round(percentile(samples, 0.99), 3)
    out["floor_ms"] = round(sum(statistics.median(s) for s in costs.values()), 3)
    return out
