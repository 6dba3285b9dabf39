"""``books``: the simulator's save of its books (every few seconds, on its loop) at a given history size.

A simulator is filled in this process with ``orders`` market orders (alternating buys and sells on a netting
account: each order one deal and one ended order), then saved ``saves`` times, ``between`` orders after each
other, as ``mtrobot simbroker`` saves; then restored into a fresh simulator, as a restart does. Beside the
save, from the same run, its floor: appending the bytes one save adds and an fsync (what the history file
costs at least).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mtrobot.bench.floor import append_fsync_ms, percentile
from mtrobot.bench.rig import bench_broker
from mtrobot.broker import constants as mt5
from mtrobot.broker.backends import open_terminal
from mtrobot.core.errors import FatalError
from mtrobot.sim import persistence
from mtrobot.sim.admin import LocalAdmin
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.clock import VirtualClock

START = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)
BETWEEN_SAVES = 20
"""Orders between two saves: what a few orders a second add in the simulator's 5 s between saves."""
Progress = Callable[[str, int, int], None]


async def _trader(broker: SimBroker) -> Any:
    password = "Bench-" + secrets.token_urlsafe(12)  # a throw-away account of a throw-away simulator
    login = await LocalAdmin(broker).create_account(
        server="MTRobot-Demo", password=password, investor_password=password + "-inv"
    )
    term = open_terminal("sim-inprocess", broker=broker)
    if not await term.initialize(login=login, password=password, server="MTRobot-Demo"):
        raise FatalError(f"bench books: the simulator refused its own account: {await term.last_error()}")
    return term


async def _trade(term: Any, count: int, done: int, progress: Progress, total: int) -> None:
    for n in range(count):
        tick = await term.symbol_info_tick("EURUSD")
        buy = (done + n) % 2 == 0
        side, price = (mt5.ORDER_TYPE_BUY, tick.ask) if buy else (mt5.ORDER_TYPE_SELL, tick.bid)
        request: dict[str, Any] = {
            "action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.01, "deviation": 100,
            "type": side, "price": price,
        }  # fmt: skip
        result = await term.order_send(request)
        if result is None or result.retcode != mt5.TRADE_RETCODE_DONE:
            raise FatalError(f"bench books: an order was refused: {result}")
        if (done + n) % 500 == 0:
            progress("bench books: orders", done + n, total)


async def run_books_benchmark(orders: int, saves: int, between: int, progress: Progress) -> dict[str, Any]:
    broker = SimBroker(bench_broker(0), clock=VirtualClock(START))
    term = await _trader(broker)
    total = orders + saves * between
    await _trade(term, orders, 0, progress, total)
    with tempfile.TemporaryDirectory(prefix="mtrobot-bench-books-") as tmp:
        folder = Path(tmp)
        path = folder / "state.json"
        writer = persistence.BooksWriter(path)
        started = time.perf_counter()
        writer.save(broker)
        first_ms = (time.perf_counter() - started) * 1000
        times, grown = [], []
        for n in range(saves):
            await _trade(term, between, orders + n * between, progress, total)
            size = writer.history.stat().st_size
            started = time.perf_counter()
            writer.save(broker)
            times.append((time.perf_counter() - started) * 1000)
            grown.append(writer.history.stat().st_size - size)
        progress("bench books: orders", total, total)
        history_mb = writer.history.stat().st_size / 2**20
        head_kb = path.stat().st_size / 1024
        fresh = SimBroker(bench_broker(0), clock=VirtualClock(START + dt.timedelta(hours=1)))
        started = time.perf_counter()
        restored = persistence.load(fresh, path)
        restore_ms = (time.perf_counter() - started) * 1000
        if restored != 1 or persistence.snapshot(fresh) != persistence.snapshot(broker):
            raise FatalError("bench books: the restored books differ from the saved ones")
        floor = append_fsync_ms(folder / "floor.jsonl", max(1, int(statistics.median(grown))), max(saves, 20))
    account = next(iter(broker.servers["MTRobot-Demo"].accounts.values()))
    return {
        "bench": "books",
        "orders": total,
        "deals": len(account.deals),
        "ended_orders": len(account.history_orders),
        "orders_between_saves": between,
        "saves": saves,
        "save_p50_ms": round(statistics.median(times), 3),
        "save_max_ms": round(max(times), 3),
        "first_save_ms": round(first_ms, 1),
        "append_fsync_p50_ms": round(statistics.median(floor), 3),
        "append_fsync_p99_ms": round(percentile(floor, 0.99), 3),
        "bytes_per_save_p50": int(statistics.median(grown)),
        "history_mb": round(history_mb, 2),
        "head_kb": round(head_kb, 1),
        "restore_ms": round(restore_ms, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
