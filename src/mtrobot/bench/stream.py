"""``mtrobot bench stream`` (DESIGN 6): raw events in vs snapshots out in one agent's aggregator, and the
web's WebSocket fan-out of snapshots to many clients.

Both run on a throw-away platform: embedded NATS, ``mtrobot simbroker`` and (for the fan-out) ``mtrobot web``
as child processes, in a temporary data dir.

- ``aggregation``: the real aggregator on a simulated account with open positions, reading the terminal
  over TCP as in an agent, fed ``rate`` raw events a second for ``seconds`` (ticks on held and other symbols,
  order updates, robot states, and a real trade at the broker with its fill every 5 s). Reported: snapshots a
  second out and the shortest gap between two; the CPU of this process (the aggregator with its terminal
  polls, and the event generator), of the same feed into nothing first (the generator alone), and the
  difference: the aggregation's; the process's RSS; and whether the last snapshot equals the state
  rebuilt from every raw event the aggregator applied, in order.
- ``fanout``: ``clients`` WebSockets on one web worker, spread over ``traders`` traders (one account each);
  every account gets a snapshot every 0.5 s (the aggregator's most) for ``seconds``. Reported: the delay
  from a snapshot's ``ts`` to its arrival at a client (p50/p99/max), the web worker's RSS and CPU, and
  whether every client got every account's last snapshot.

The bare cost beside them: a NATS publish to a subscriber on the same server (p50).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from nats.aio.client import Client

from mtrobot import eventloop
from mtrobot.agent.account_state import AccountState, RawEvent, RobotsSeen, TickSeen
from mtrobot.agent.aggregator import Aggregator
from mtrobot.agent.snapshot_io import NatsSnapshotSink, TerminalReader
from mtrobot.bench.floor import percentile
from mtrobot.bench.procstat import cpu_seconds, rss_mb
from mtrobot.broker import constants as mt5
from mtrobot.broker.backends import open_terminal
from mtrobot.broker.terminal import Terminal
from mtrobot.bus import subjects
from mtrobot.bus.codec import decode, encode
from mtrobot.bus.connect import connect, provision
from mtrobot.bus.server import EmbeddedNats, free_port
from mtrobot.core.errors import FatalError
from mtrobot.core.events import AccountSnapshot, ConnectionState, Fill, OrderUpdate
from mtrobot.core.lifecycle import OrderState
from mtrobot.proc import die_with_parent, inherited_env, spawn_mtrobot, stop_process
from mtrobot.settings import Settings
from mtrobot.sim.admin import SimAdmin
from mtrobot.sim.config import always_open, default_config

HELD = ("EURUSD", "GBPUSD")
ORDER_LIFE = (OrderState.RECEIVED, OrderState.VALIDATED, OrderState.SENT, OrderState.FILLED)
OTHER = ("USDJPY", "XAUUSD")
PASSWORD = secrets.token_urlsafe(16)  # a throw-away simulated account and bench traders


@dataclass
class StreamRig:
    url: str
    nc: Client
    data_dir: Path
    admin: SimAdmin
    server: str
    sim_endpoint: tuple[str, int]


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _raise_open_files() -> None:
    """A thousand sockets at each end: lift the soft limit to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def _until(predicate: Any, what: str, timeout: float, proc: Any = None) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if proc is not None and proc.returncode is not None:
            raise FatalError(f"{what}: the process exited with code {proc.returncode}")
        if loop.time() > deadline:
            raise FatalError(f"{what}: not ready within {timeout:.0f} s")
        await asyncio.sleep(0.05)


def _env(rig_dir: Path, url: str) -> dict[str, str]:
    return inherited_env() | {"MTROBOT_NATS_URL": url, "MTROBOT_DATA_DIR": str(rig_dir)}


@contextlib.asynccontextmanager
async def stream_rig(startup_timeout: float = 60.0) -> AsyncIterator[StreamRig]:
    with tempfile.TemporaryDirectory(prefix="mtrobot-bench-stream-") as tmp:
        data_dir = Path(tmp)
        (data_dir / "run").mkdir()
        nats = EmbeddedNats(data_dir / "nats")
        url = await nats.start()
        nc = await connect(url, "bench-stream")
        sim = None
        try:
            await provision(nc.jetstream(timeout=10))
            config = data_dir / "broker.json"
            config.write_text(always_open(default_config(42)).model_dump_json())
            args = ("simbroker", "--port", "0", "--config", str(config))
            sim = await spawn_mtrobot(args, env=_env(data_dir, url), log_path=data_dir / "simbroker.log")
            run_file = Settings(data_dir=data_dir).simbroker_file

            async def announced() -> bool:
                return run_file.exists()

            await _until(announced, "simbroker", startup_timeout, sim)
            info = json.loads(run_file.read_text())
            server = info["servers"][0]
            server = server["name"] if isinstance(server, dict) else str(server)
            admin = SimAdmin.from_run_file(run_file)
            yield StreamRig(url, nc, data_dir, admin, server, (str(info["host"]), int(info["port"])))
        finally:
            await nc.close()
            if sim is not None:
                await stop_process(sim)
            await nats.stop()


async def bare_publish_ms(nc: Client, count: int = 300) -> float:
    """The yardstick: publish to a subscriber on the same server and connection, one message at a time."""
    got: asyncio.Queue[float] = asyncio.Queue()

    async def on(_msg: Any) -> None:
        got.put_nowait(time.perf_counter())

    sub = await nc.subscribe("bench.stream.bare", cb=on)
    samples = []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            await nc.publish("bench.stream.bare", b"x" * 500)
            samples.append((await asyncio.wait_for(got.get(), 5) - t0) * 1000)
    finally:
        await sub.unsubscribe()
    return round(sorted(samples)[len(samples) // 2], 3)


# -- aggregation ------------------------------------------------------------------------------------------


async def _trade(term: Terminal, account: str, symbol: str, side: int, n: int) -> Fill:
    tick = await term.symbol_info_tick(symbol)
    if tick is None:
        raise FatalError(f"the simulator has no price for {symbol}")
    request = {"action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": 0.1, "type": side,
               "price": tick.ask if side == mt5.ORDER_TYPE_BUY else tick.bid, "deviation": 100}  # fmt: skip
    result = await term.order_send(request)
    if result is None or result.retcode != mt5.TRADE_RETCODE_DONE:
        raise FatalError(f"the simulator refused a bench trade: {result}")
    return Fill(order_id=f"bench{n}", account=account, symbol=symbol,
                side="buy" if side == mt5.ORDER_TYPE_BUY else "sell", ticket=result.order, deal=result.deal,
                position=result.order, volume=result.volume, price=result.price, requested_volume=0.1,
                remaining_volume=0.0, partial=False, retcode=result.retcode, broker_time=datetime.now(UTC),
                latency_ms=0.0)  # fmt: skip


class _Recorder:
    """Every raw event the aggregator applies, in order (its own polls included), and what it published."""

    def __init__(self, sink: NatsSnapshotSink) -> None:
        self.events: list[RawEvent] = []
        self.published: list[AccountSnapshot] = []
        self._sink = sink

    def watch(self, aggregator: Aggregator) -> None:
        apply = aggregator.apply

        def recording_apply(event: RawEvent) -> bool:
            self.events.append(event)
            return apply(event)

        aggregator.apply = recording_apply  # type: ignore[method-assign]

    async def last_seq(self) -> int | None:
        return await self._sink.last_seq()

    async def publish(self, snapshot: AccountSnapshot) -> None:
        await self._sink.publish(snapshot)
        self.published.append(snapshot)


class _NoAggregator:
    """The same feed into nothing: what generating the events (and the trades) costs by itself."""

    account = "bench-stream"

    def apply(self, event: RawEvent) -> bool:
        return False

    def on_fill(self, fill: Fill) -> None:
        pass

    def on_order_update(self, update: OrderUpdate) -> None:
        pass


async def _feed(aggregator: Aggregator | _NoAggregator, term: Terminal, seconds: float, rate: int) -> int:
    rng = random.Random(7)
    prices = {s: 1.1 + i for i, s in enumerate(HELD + OTHER)}
    loop = asyncio.get_running_loop()
    started, fed, trades, updates = loop.time(), 0, 0, 0
    for i in itertools.count():
        if loop.time() - started >= seconds:
            return fed
        roll = rng.random()
        if i % (5 * rate) == 5 * rate - 1:  # a real trade at the broker, and its fill, every 5 s
            side = mt5.ORDER_TYPE_BUY if trades % 2 == 0 else mt5.ORDER_TYPE_SELL
            aggregator.on_fill(await _trade(term, aggregator.account, "USDJPY", side, trades))
            trades += 1
        elif roll < 0.85:
            symbol = rng.choice(HELD) if roll < 0.70 else rng.choice(OTHER)
            prices[symbol] = round(prices[symbol] + rng.uniform(-0.0005, 0.0005), 5)
            aggregator.apply(TickSeen(symbol, prices[symbol], round(prices[symbol] + 0.0001, 5)))
        elif roll < 0.95:  # an order's updates in the order path's order: received, validated, sent, filled
            state = ORDER_LIFE[updates % len(ORDER_LIFE)]
            aggregator.on_order_update(OrderUpdate(order_id=f"u{updates // len(ORDER_LIFE)}", symbol="EURUSD",
                                                   account=aggregator.account, state=state))  # fmt: skip
            updates += 1
        else:
            robots = ({"name": "ma_cross EURUSD H1", "state": "running", "orders_sent": i // 200},)
            aggregator.apply(RobotsSeen(robots))
        fed += 1
        await asyncio.sleep(max(0.0, started + (i + 1) / rate - loop.time()))
    return fed


async def measure_aggregation(rig: StreamRig, seconds: float, rate: int) -> dict[str, Any]:
    investor = secrets.token_urlsafe(12)
    login = await rig.admin.create_account(
        server=rig.server, password=PASSWORD, investor_password=investor, balance=100_000.0
    )
    host, port = rig.sim_endpoint
    term = open_terminal("sim", host=host, port=port)
    if not await term.initialize(login=login, password=PASSWORD, server=rig.server):
        raise FatalError("the bench could not log in at the simulator")
    account = "bench-stream"
    try:
        for n, symbol in enumerate(HELD):
            await _trade(term, account, symbol, mt5.ORDER_TYPE_BUY, 1000 + n)
        cpu0, t0 = _own_cpu_s(), time.perf_counter()
        await _feed(_NoAggregator(), term, min(seconds, 30.0), rate)  # as long as the measured, to 30 s
        baseline_pct = 100 * (_own_cpu_s() - cpu0) / (time.perf_counter() - t0)
        recorder = _Recorder(NatsSnapshotSink(rig.nc, account))
        aggregator = Aggregator(account, TerminalReader(term), recorder)
        recorder.watch(aggregator)
        await aggregator.start()
        await _until(lambda: _true(recorder.published), "the first snapshot", 10)
        out_before, cpu0, t0 = len(recorder.published), _own_cpu_s(), time.perf_counter()
        load0 = round(os.getloadavg()[0], 2)
        fed = await _feed(aggregator, term, seconds, rate)
        wall, cpu = time.perf_counter() - t0, _own_cpu_s() - cpu0
        during = recorder.published[out_before:]
        rss = round(rss_mb(os.getpid()), 1)
        await aggregator.stop()
    finally:
        await term.shutdown()
    rebuilt = AccountState(account)
    for event in recorder.events:
        rebuilt.apply(event)
    last = recorder.published[-1]
    equal = rebuilt.snapshot(last.seq, last.ts) == last
    kv = await (await rig.nc.jetstream(timeout=5).key_value(subjects.SNAPSHOTS_BUCKET)).get(account)
    gaps = [(b.ts - a.ts).total_seconds() for a, b in itertools.pairwise(during)]
    process_pct = 100 * cpu / wall
    return {
        "bench": "stream",
        "part": "aggregation",
        "seconds": round(wall, 1),
        "raw_events_in": fed,
        "raw_events_per_s": round(fed / wall, 1),
        "events_applied_incl_polls": len(recorder.events),
        "snapshots_out": len(during),
        "snapshots_per_s": round(len(during) / wall, 2),
        "min_gap_between_snapshots_s": round(min(gaps), 3) if gaps else None,
        "process_cpu_pct_of_core": round(process_pct, 2),
        "feed_alone_cpu_pct_of_core": round(baseline_pct, 2),
        "aggregation_cpu_pct_of_core": round(max(0.0, process_pct - baseline_pct), 2),
        "process_rss_mb": rss,
        "last_snapshot_equals_rebuild": equal,
        "last_snapshot_equals_kv": decode(AccountSnapshot, kv.value or b"") == last,
        "load_avg_1m": {"start": load0, "end": round(os.getloadavg()[0], 2)},
        "cpus": os.cpu_count(),
        "event_loop": eventloop.loop_name(),
        "nats_publish_p50_ms": await bare_publish_ms(rig.nc),
    }


async def _true(items: list[Any]) -> bool:
    return bool(items)


# -- fan-out ----------------------------------------------------------------------------------------------


async def _web(rig: StreamRig) -> tuple[Any, str]:
    port = free_port()
    env = _env(rig.data_dir, rig.url) | {"MTROBOT_DATABASE_URL": f"sqlite:///{rig.data_dir / 'web.db'}"}
    args = ("web", "--host", "127.0.0.1", "--port", str(port))
    proc = await spawn_mtrobot(args, env=env, log_path=rig.data_dir / "web.log")
    url = f"http://127.0.0.1:{port}"

    async def up() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(url + "/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    await _until(up, "web", 60, proc)
    return proc, url


def _traders(rig: StreamRig, count: int) -> list[tuple[str, dict[str, str]]]:
    """``count`` traders with one account and one signed-in session each, written straight into the web's
    database (signing up a thousand people through the API would measure argon2 and the sign-up
    throttle, not the stream): (account id, the session cookie)."""
    from datetime import timedelta

    from mtrobot.storage import accounts as account_repo
    from mtrobot.storage import traders as trader_repo
    from mtrobot.storage.db import make_engine, session_factory
    from mtrobot.vault import Vault, load_keyring
    from mtrobot.web.credentials import to_columns
    from mtrobot.web.deps import SESSION_COOKIE
    from mtrobot.web.security import digest, new_id, new_secret

    settings = Settings(data_dir=rig.data_dir, database_url=f"sqlite:///{rig.data_dir / 'web.db'}")
    engine = make_engine(settings.resolved_database_url)
    vault = Vault(load_keyring(settings))
    found = []
    try:
        with session_factory(engine).begin() as db:
            for n in range(count):
                trader = trader_repo.add_trader(db, new_id("trd_"), f"t{n}@bench.example", f"trader {n}", "-")
                token = new_secret()
                trader_repo.add_session(db, digest(token), trader.id, new_secret(24), timedelta(hours=1))
                account = f"bench-fan-{n}"
                sealed = to_columns(vault.seal(account, "unused"))
                account_repo.add_account(db, account_id=account, trader_id=trader.id, server=rig.server,
                                         login=10_000 + n, sealed=sealed)  # fmt: skip
                found.append((account, {SESSION_COOKIE: token}))
    finally:
        engine.dispose()
    return found


async def _line(stream: asyncio.StreamReader, timeout: float) -> dict[str, Any]:
    line = await asyncio.wait_for(stream.readline(), timeout)
    if not line:
        raise FatalError("the bench's WebSocket clients exited")
    found: dict[str, Any] = json.loads(line)
    return found


async def measure_fanout(rig: StreamRig, clients: int, seconds: float, traders: int) -> dict[str, Any]:
    _raise_open_files()
    web, url = await _web(rig)
    sockets = None
    try:
        owners = await asyncio.to_thread(_traders, rig, traders)
        cookies = ["; ".join(f"{k}={v}" for k, v in owners[i % traders][1].items()) for i in range(clients)]
        host, port = url.removeprefix("http://").split(":")
        spec = {"host": host, "port": int(port), "path": "/api/v1/stream", "origin": url, "clients": cookies}
        # The clients run in a process of their own (mtrobot.bench.ws_clients says why).
        sockets = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mtrobot.bench.ws_clients", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, env=inherited_env(), limit=2**26,
            preexec_fn=die_with_parent)  # fmt: skip
        assert sockets.stdin is not None and sockets.stdout is not None
        sockets.stdin.write(json.dumps(spec).encode() + b"\n")
        await sockets.stdin.drain()
        ready = await _line(sockets.stdout, 120)
        rss_idle = round(rss_mb(web.pid), 1)
        cpu0, t1 = cpu_seconds(web.pid), time.perf_counter()
        load0 = round(os.getloadavg()[0], 2)
        seq, peak = 0, rss_idle
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < seconds:
            seq += 1
            for account, _ in owners:
                snap = AccountSnapshot(seq=seq, account=account, connection=ConnectionState.CONNECTED,
                                       equity=10_000 + seq, balance=10_000, currency="USD")  # fmt: skip
                await rig.nc.publish(subjects.snapshot(account), encode(snap))
            peak = max(peak, round(rss_mb(web.pid), 1))
            await asyncio.sleep(max(0.0, started + seq * 0.5 - loop.time()))
        sockets.stdin.write(json.dumps({"stop": True, "last_seq": seq}).encode() + b"\n")
        await sockets.stdin.drain()
        result = await _line(sockets.stdout, 120)
        wall, cpu = time.perf_counter() - t1, cpu_seconds(web.pid) - cpu0
        delays = result["delays_ms"]
        return {
            "bench": "stream",
            "part": "fanout",
            "clients": clients,
            "traders": traders,
            "seconds": round(wall, 1),
            "snapshots_published": seq * traders,
            "messages_received": len(delays),
            "clients_with_the_last_snapshot": sum(last == seq for last in result["last_seqs"]),
            "connect_all_s": ready["connect_s"],
            "delay_p50_ms": round(percentile(delays, 0.5), 2) if delays else None,
            "delay_p99_ms": round(percentile(delays, 0.99), 2) if delays else None,
            "delay_max_ms": round(max(delays), 2) if delays else None,
            "web_rss_mb_idle": rss_idle,
            "web_rss_mb_peak": peak,
            "web_cpu_pct_of_core": round(100 * cpu / wall, 1),
            "clients_cpu_pct_of_core": round(100 * result["cpu_s"] / wall, 1),
            "load_avg_1m": {"start": load0, "end": round(os.getloadavg()[0], 2)},
            "cpus": os.cpu_count(),
            "event_loop": eventloop.loop_name(),  # the web worker's (the same environment)
            "nats_publish_p50_ms": await bare_publish_ms(rig.nc),
        }
    finally:
        if sockets is not None:
            if sockets.stdin is not None:
                sockets.stdin.close()
            await stop_process(sockets)
        await stop_process(web)


async def run_stream_benchmark(
    seconds: float = 60.0, rate: int = 100, clients: int = 1000, traders: int = 10
) -> list[dict[str, Any]]:
    async with stream_rig() as rig:
        return [
            await measure_aggregation(rig, seconds, rate),
            await measure_fanout(rig, clients, seconds, traders),
        ]
