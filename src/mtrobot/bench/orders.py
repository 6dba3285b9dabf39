"""``latency``, ``throughput`` and ``burst``: orders through the platform beside the bare costs they stand on.

Every result also carries, from the same run: the floor (:mod:`.floor`), CPU per order summed over the
platform's processes (connectors, nats-server, recorder; the simulator's own reported apart, as a real
broker's is not ours), and each connector's resident memory at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg

from mtrobot.bench.floor import measure_floor, percentile
from mtrobot.bench.procstat import CpuMeter, rss_mb
from mtrobot.bench.profile import Profiler
from mtrobot.bench.rig import Rig, platform_rig, recorder_caught_up
from mtrobot.bus import subjects
from mtrobot.core.errors import FatalError

SYMBOL = "EURUSD"
ORDER_TIMEOUT_S = 120.0
"""Generous: on a machine shared by many busy processes one order can wait seconds; the figures show it."""
WINDOW = 256
"""Orders in flight at most during the throughput run (the connector's consumer takes 256 unacknowledged)."""

Tick = Callable[[int], None]


def order_progress(update: Callable[[str, int, int], None], what: str) -> Callable[[int | None], Tick]:
    """``start(total) -> tick`` over :func:`mtrobot.bench.progress.progress_bar`'s ``update`` (a run of N
    seconds has no known total: its bar grows with what was done)."""

    def start(total: int | None) -> Tick:
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            update(what, done, total or done)

        return tick

    return start


class Outcomes:
    """Terminal outcomes per order_id as they arrive on the bus."""

    def __init__(self) -> None:
        self.done: dict[str, asyncio.Event] = {}
        self.at: dict[str, float] = {}
        self.failed: dict[str, Any] = {}
        self.on_done: Callable[[str], None] | None = None

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
        if order_id in self.at:
            return
        self.at[order_id] = time.perf_counter()
        self.expect(order_id).set()
        if self.on_done is not None:
            self.on_done(order_id)


async def _subscribe(rig: Rig) -> Outcomes:
    outcomes = Outcomes()
    await rig.nc.subscribe("broker.fill.*.>", cb=outcomes.on_fill)
    await rig.nc.subscribe("broker.error.*.>", cb=outcomes.on_error)
    await rig.nc.flush(timeout=5)
    return outcomes


def _order(account: str, index: int) -> tuple[str, bytes]:
    order_id = f"b{index}-{uuid.uuid4().hex[:10]}"
    side = "buy" if index % 2 == 0 else "sell"  # alternate so the book stays near flat
    body = {"order_id": order_id, "account": account, "symbol": SYMBOL, "order_type": side, "volume": 0.01}
    return order_id, json.dumps(body).encode()


def _check(outcomes: Outcomes) -> None:
    if outcomes.failed:
        first = next(iter(outcomes.failed.values()))
        raise FatalError(f"{len(outcomes.failed)} orders were refused, e.g. {first.get('message')}")


def orders_retried(data_dir: Path, account: str) -> int:
    """The bench's orders that were sent more than once (a broker's refusal to retry, such as 10024
    "too many requests", each costs the connector's retry backoff): read from the account's journal."""
    path = data_dir / "connector" / account / "journal.sqlite3"
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
        row = db.execute("SELECT count(*) FROM orders WHERE attempts > 1").fetchone()
    return int(row[0])


class Measured:
    """The CPU meter (and profiler) around the measured part of a run."""

    def __init__(self, rig: Rig, profile: bool) -> None:
        self.rig = rig
        self.meter = CpuMeter(rig.pids)
        target = rig.pids[f"connector-{rig.account}"]
        self.profiler = Profiler(target, rig.data_dir / "profile.txt") if profile else None
        self.top: list[dict[str, Any]] = []

    async def __aenter__(self) -> Measured:
        if self.profiler is not None:
            await self.profiler.start()
        self.load_start = round(os.getloadavg()[0], 2)
        self.meter.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:
            await recorder_caught_up(self.rig)  # its share of this run's work is in the figures
        self.meter.stop()
        if self.profiler is not None:
            self.top = await self.profiler.stop()

    def figures(self, orders: int) -> dict[str, Any]:
        """CPU per order by process, connector RSS, and the machine's load (a shared machine's figures
        mean little without it)."""
        used = self.meter.used
        platform = sum(v for k, v in used.items() if k not in ("simbroker", "bench-client"))
        connectors = [k for k in self.rig.pids if k.startswith("connector-")]
        out: dict[str, Any] = {
            "cpu_ms_per_order": round(1000 * platform / orders, 3),
            "cpu_ms_per_order_by_process": {
                "connectors": round(1000 * sum(used.get(k, 0.0) for k in connectors) / orders, 3),
                "nats": round(1000 * used.get("nats", 0.0) / orders, 3),
                "recorder": round(1000 * used.get("recorder", 0.0) / orders, 3),
            },
            "sim_cpu_ms_per_order": round(1000 * used.get("simbroker", 0.0) / orders, 3),
            "client_cpu_ms_per_order": round(1000 * used.get("bench-client", 0.0) / orders, 3),
            "connector_rss_mb": round(max(rss_mb(self.rig.pids[k]) for k in connectors), 1),
            "orders_retried": sum(orders_retried(self.rig.data_dir, a) for a in self.rig.accounts),
            "load_avg_1m": {"start": self.load_start, "end": round(os.getloadavg()[0], 2)},
            "cpus": os.cpu_count(),
        }
        if self.top:
            out["profile_top"] = self.top
        return out


async def measure_latency(
    rig: Rig, outcomes: Outcomes, orders: int, warmup: int, tick: Tick, profile: bool, floor_samples: int
) -> dict[str, Any]:
    js = rig.nc.jetstream(timeout=5)
    subject = subjects.orders_submitted(rig.account, SYMBOL)

    async def one(index: int) -> float:
        order_id, body = _order(rig.account, index)
        event = outcomes.expect(order_id)
        t0 = time.perf_counter()
        await js.publish(subject, body, headers={"Nats-Msg-Id": order_id})
        await asyncio.wait_for(event.wait(), ORDER_TIMEOUT_S)
        return (outcomes.at[order_id] - t0) * 1000

    for index in range(warmup):
        await one(index)
    samples: list[float] = []
    async with Measured(rig, profile) as measured:
        for index in range(warmup, warmup + orders):
            samples.append(await one(index))
            tick(1)
    _check(outcomes)
    floor = await measure_floor(rig, floor_samples)
    p50 = statistics.median(samples)
    return {
        "bench": "latency",
        "orders": orders,
        "broker_rate_limit": rig.rate_limit,
        "order_p50_ms": round(p50, 3),
        "order_p99_ms": round(percentile(samples, 0.99), 3),
        "order_max_ms": round(max(samples), 3),
        **floor,
        "ratio_p50": round(p50 / floor["nats_request_reply_p50_ms"], 1),
        "ratio_to_floor_p50": round(p50 / floor["floor_ms"], 2),
        **measured.figures(orders),
    }


async def measure_throughput(
    rig: Rig,
    outcomes: Outcomes,
    orders: int,
    seconds: float | None,
    tick: Tick,
    profile: bool,
    floor_samples: int,
) -> dict[str, Any]:
    """Orders published as fast as the platform takes them (at most :data:`WINDOW` in flight), spread over
    the connectors; for ``seconds`` when given, else ``orders`` of them."""
    js = rig.nc.jetstream(timeout=5)
    window = asyncio.Semaphore(WINDOW)

    def done(_order_id: str) -> None:
        window.release()
        tick(1)

    outcomes.on_done = done
    published = 0
    async with Measured(rig, profile) as measured:
        t0 = time.perf_counter()
        while (published < orders) if seconds is None else (time.perf_counter() - t0 < seconds):
            await window.acquire()
            account = rig.accounts[published % len(rig.accounts)]
            order_id, body = _order(account, published)
            outcomes.expect(order_id)
            await js.publish_async(
                subjects.orders_submitted(account, SYMBOL), body, headers={"Nats-Msg-Id": order_id}
            )
            published += 1
        await asyncio.wait_for(js.publish_async_completed(), ORDER_TIMEOUT_S)
        events = [e.wait() for oid, e in outcomes.done.items() if oid not in outcomes.at]
        await asyncio.wait_for(asyncio.gather(*events), ORDER_TIMEOUT_S + published / 100)
        elapsed = time.perf_counter() - t0
    _check(outcomes)
    floor = await measure_floor(rig, floor_samples)
    return {
        "bench": "throughput",
        "connectors": len(rig.accounts),
        "broker_rate_limit": rig.rate_limit,
        "orders": published,
        "seconds": round(elapsed, 3),
        "orders_per_second": round(published / elapsed, 1),
        **floor,
        **measured.figures(published),
    }


async def measure_burst(
    rig: Rig, outcomes: Outcomes, rounds: int, pause_s: float, tick: Tick, profile: bool, floor_samples: int
) -> dict[str, Any]:
    """One order for every connector at the same instant (a bar close), ``rounds`` times: until the last
    fill of each round. ``pause_s``: the platform rests that long before each round, as between two bar
    closes; with 0 a round starts at the previous one's last fill, while that round's work after its fills
    (audit batches, the outbox's confirmations, the recorder's insert) still runs."""
    js = rig.nc.jetstream(timeout=5)
    last: list[float] = []
    each: list[float] = []
    async with Measured(rig, profile) as measured:
        for r in range(rounds):
            if pause_s:
                await asyncio.sleep(pause_s)  # a rest between bar closes, outside the timed part
            batch = [(account, *_order(account, 1_000_000 + r)) for account in rig.accounts]
            events = [outcomes.expect(order_id) for _, order_id, _ in batch]
            t0 = time.perf_counter()
            for account, order_id, body in batch:
                await js.publish_async(
                    subjects.orders_submitted(account, SYMBOL), body, headers={"Nats-Msg-Id": order_id}
                )
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), ORDER_TIMEOUT_S)
            times = [(outcomes.at[order_id] - t0) * 1000 for _, order_id, _ in batch]
            last.append(max(times))
            each.extend(times)
            tick(1)
    _check(outcomes)
    floor = await measure_floor(rig, floor_samples)
    return {
        "bench": "burst",
        "connectors": len(rig.accounts),
        "broker_rate_limit": rig.rate_limit,
        "rounds": rounds,
        "pause_s": pause_s,
        "last_fill_ms_median": round(statistics.median(last), 1),
        "last_fill_ms_max": round(max(last), 1),
        "last_fill_ms_by_round": [round(t, 1) for t in last],
        "fill_p50_ms": round(statistics.median(each), 1),
        **floor,
        **measured.figures(len(each)),
    }


async def run_order_benchmark(
    name: str,
    *,
    orders: int,
    warmup: int,
    seconds: float | None = None,
    connectors: int = 1,
    rounds: int = 5,
    pause_s: float = 0.0,
    rate_limit: int | None = None,
    profile: bool = False,
    progress: Any = None,
    floor_samples: int = 300,
) -> dict[str, Any]:
    """Run one benchmark on a fresh rig. ``progress(total) -> tick`` makes the progress bar.

    With one connector (latency, or throughput of one) the simulator's per-session limit is lifted unless
    ``rate_limit`` says otherwise: the platform, not the broker's policy, is under test. One order at a
    time at ~5 ms each is ~200 order_send a second, past the default 100: about one order in a hundred was
    refused with 10024 (too many requests) and retried after the connector's 0.2 s backoff, which was
    the latency bench's p99 of ~210 ms (``orders_retried`` shows such retries in every result)."""
    if rate_limit is None:
        rate_limit = 0 if name == "latency" or (name == "throughput" and connectors == 1) else 100
    if name == "latency":
        connectors = 1
    total = rounds if name == "burst" else (orders if seconds is None else None)
    async with platform_rig(connectors=connectors, rate_limit=rate_limit) as rig:
        outcomes = await _subscribe(rig)
        tick: Tick = progress(total) if progress is not None else (lambda n: None)
        if name == "latency":
            return await measure_latency(rig, outcomes, orders, warmup, tick, profile, floor_samples)
        for i in range(warmup if name == "throughput" else max(1, warmup // 10)):
            await _warm(rig, outcomes, i)  # each connector's first orders pay for its caches
        if name == "throughput":
            return await measure_throughput(rig, outcomes, orders, seconds, tick, profile, floor_samples)
        return await measure_burst(rig, outcomes, rounds, pause_s, tick, profile, floor_samples)


async def _warm(rig: Rig, outcomes: Outcomes, index: int) -> None:
    js = rig.nc.jetstream(timeout=5)
    batch = [(account, *_order(account, 2_000_000 + index)) for account in rig.accounts]
    for account, order_id, body in batch:
        outcomes.expect(order_id)
        await js.publish(subjects.orders_submitted(account, SYMBOL), body, headers={"Nats-Msg-Id": order_id})
    waits = (outcomes.expect(order_id).wait() for _, order_id, _ in batch)
    await asyncio.wait_for(asyncio.gather(*waits), ORDER_TIMEOUT_S)
