"""``latency`` and ``throughput``: orders through one connector, beside a bare NATS request/reply."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from mtrobot.bench.rig import Rig, platform_rig
from mtrobot.bus import subjects
from mtrobot.core.errors import FatalError

SYMBOL = "EURUSD"
ORDER_TIMEOUT_S = 10.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bare_request_reply_ms(nc: Client, count: int) -> list[float]:
    """The yardstick: a request/reply round trip on the same server, same connection."""

    async def echo(msg: Msg) -> None:
        await msg.respond(msg.data)

    sub = await nc.subscribe("bench.echo", cb=echo)
    try:
        samples = []
        for _ in range(count):
            t0 = time.perf_counter()
            await nc.request("bench.echo", b"x" * 200, timeout=5)
            samples.append((time.perf_counter() - t0) * 1000)
        return samples
    finally:
        await sub.unsubscribe()


class Outcomes:
    """Terminal outcomes per order_id as they arrive on the bus."""

    def __init__(self) -> None:
        self.done: dict[str, asyncio.Event] = {}
        self.at: dict[str, float] = {}
        self.failed: dict[str, Any] = {}

    def expect(self, order_id: str) -> asyncio.Event:
        return self.done.setdefault(order_id, asyncio.Event())

    async def on_fill(self, msg: Msg) -> None:
        fill = json.loads(msg.data)
        if not fill.get("remaining_volume"):
            self._finish(fill["order_id"])

    async def on_error(self, msg: Msg) -> None:
        error = json.loads(msg.data)
        self.failed[error["order_id"]] = error
        self._finish(error["order_id"])

    def _finish(self, order_id: str) -> None:
        self.at.setdefault(order_id, time.perf_counter())
        self.expect(order_id).set()


async def _subscribe(rig: Rig) -> Outcomes:
    outcomes = Outcomes()
    await rig.nc.subscribe(f"broker.fill.{rig.account}.>", cb=outcomes.on_fill)
    await rig.nc.subscribe(f"broker.error.{rig.account}.>", cb=outcomes.on_error)
    await rig.nc.flush(timeout=5)
    return outcomes


def _order(rig: Rig, index: int) -> tuple[str, bytes]:
    order_id = f"b{index}-{uuid.uuid4().hex[:10]}"
    side = "buy" if index % 2 == 0 else "sell"  # alternate so the book stays near flat
    body = {
        "order_id": order_id,
        "account": rig.account,
        "symbol": SYMBOL,
        "order_type": side,
        "volume": 0.01,
    }
    return order_id, json.dumps(body).encode()


async def _publish(rig: Rig, order_id: str, body: bytes) -> None:
    js = rig.nc.jetstream(timeout=5)
    await js.publish(subjects.orders_submitted(rig.account, SYMBOL), body, headers={"Nats-Msg-Id": order_id})


def _check(outcomes: Outcomes) -> None:
    if outcomes.failed:
        first = next(iter(outcomes.failed.values()))
        raise FatalError(f"{len(outcomes.failed)} orders were refused, e.g. {first.get('message')}")


async def measure_latency(rig: Rig, orders: int, warmup: int) -> dict[str, Any]:
    outcomes = await _subscribe(rig)
    samples: list[float] = []
    for index in range(warmup + orders):
        order_id, body = _order(rig, index)
        event = outcomes.expect(order_id)
        t0 = time.perf_counter()
        await _publish(rig, order_id, body)
        await asyncio.wait_for(event.wait(), ORDER_TIMEOUT_S)
        if index >= warmup:
            samples.append((outcomes.at[order_id] - t0) * 1000)
    _check(outcomes)
    bare = await bare_request_reply_ms(rig.nc, max(200, orders))
    order_p50, bare_p50 = statistics.median(samples), statistics.median(bare)
    return {
        "bench": "latency",
        "orders": orders,
        "order_p50_ms": round(order_p50, 3),
        "order_p99_ms": round(percentile(samples, 0.99), 3),
        "nats_request_reply_p50_ms": round(bare_p50, 3),
        "nats_request_reply_p99_ms": round(percentile(bare, 0.99), 3),
        "ratio_p50": round(order_p50 / bare_p50, 1),
    }


async def measure_throughput(rig: Rig, orders: int) -> dict[str, Any]:
    outcomes = await _subscribe(rig)
    batch = [_order(rig, index) for index in range(orders)]
    events = [outcomes.expect(order_id) for order_id, _ in batch]
    t0 = time.perf_counter()
    await asyncio.gather(*(_publish(rig, order_id, body) for order_id, body in batch))
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), ORDER_TIMEOUT_S + orders * 0.1)
    elapsed = max(outcomes.at.values()) - t0
    _check(outcomes)
    return {
        "bench": "throughput",
        "orders": orders,
        "seconds": round(elapsed, 3),
        "orders_per_second": round(orders / elapsed, 1),
    }


async def run_order_benchmarks(names: list[str], orders: int, warmup: int) -> list[dict[str, Any]]:
    results = []
    async with platform_rig() as rig:
        if "latency" in names:
            results.append(await measure_latency(rig, orders, warmup))
        if "throughput" in names:
            results.append(await measure_throughput(rig, orders))
    return results
