"""A throw-away platform for a benchmark, run as ``mtrobot up`` runs it: the embedded nats-server,
``mtrobot simbroker`` (its own process, over TCP), ``mtrobot recorder`` and N ``mtrobot connector``
processes (journal with fsync, audit on), each a real child process, in a temporary data dir."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from nats.aio.client import Client

from mtrobot.broker import constants as mt5
from mtrobot.bus import subjects
from mtrobot.bus.connect import connect, provision
from mtrobot.bus.server import EmbeddedNats
from mtrobot.core.errors import FatalError
from mtrobot.proc import inherited_env, spawn_mtrobot, stop_process
from mtrobot.settings import Settings
from mtrobot.sim.admin import SimAdmin
from mtrobot.sim.config import BrokerConfig, always_open, default_config

BENCH_ACCOUNT = "bench"
RECORDER_DURABLE = "recorder_executions"


@dataclass
class Rig:
    nc: Client
    url: str
    accounts: list[str]
    data_dir: Path
    sim_host: str
    sim_port: int
    server: str
    admin: SimAdmin
    pids: dict[str, int] = field(default_factory=dict)
    """Process name -> pid: ``nats``, ``simbroker``, ``recorder``, ``connector-{account}``."""
    rate_limit: int = 100

    @property
    def account(self) -> str:
        return self.accounts[0]

    def platform_pids(self) -> dict[str, int]:
        """The platform's own processes (the simulated broker is not ours, as a real broker's is not)."""
        return {name: pid for name, pid in self.pids.items() if name != "simbroker"}

    async def new_sim_login(self, password: str) -> int:
        return await self.admin.create_account(
            server=self.server, password=password, investor_password=secrets.token_urlsafe(16),
            balance=10_000_000.0,
        )  # fmt: skip


async def _wait_for(
    ready: Callable[[], Awaitable[bool]], what: str, timeout: float, proc: asyncio.subprocess.Process
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await ready():
            return
        if proc.returncode is not None:
            raise FatalError(f"{what}: the process exited with code {proc.returncode}")
        await asyncio.sleep(0.05)
    raise FatalError(f"{what}: not ready within {timeout:.0f} s")


async def _spawn(
    data_dir: Path, url: str, *args: str, stdin: bytes | None = None, label: str | None = None
) -> asyncio.subprocess.Process:
    # The intake's order-rate limit lifted: the bench measures what the order path carries, as it lifts
    # the broker's own limit for one connector.
    env = inherited_env() | {
        "MTROBOT_NATS_URL": url, "MTROBOT_DATA_DIR": str(data_dir), "MTROBOT_ORDERS_PER_MIN": "0",
    }  # fmt: skip
    for name in ("MTROBOT_KAFKA_BOOTSTRAP", "MTROBOT_CLICKHOUSE_URL", "MTROBOT_FAILPOINTS"):
        env.pop(name, None)  # the bench measures the embedded platform, never an operator's services
    log_path = data_dir / "logs" / f"{label or args[0]}.log"
    return await spawn_mtrobot(args, env=env, log_path=log_path, stdin=stdin)


def bench_broker(rate_limit: int) -> BrokerConfig:
    """The simulator's default servers, open around the clock, with ``rate_limit`` order_send per second per
    session (0 = no limit: the throughput bench measures the platform, not a broker's policy), and netting
    accounts: the bench's alternating buys and sells then keep each book at one position at most. On a
    hedging account every order opened one more, and the simulator's order_check and order_send grow with
    the open positions (1.5 ms at the start of a 1,000-order run, 10.5 ms at its end), so the broker's
    share of the figure grew with the run's length and no longer matched the floor's order_send."""
    config = always_open(default_config(42))
    update = {"max_requests_per_second": rate_limit, "margin_mode": mt5.ACCOUNT_MARGIN_MODE_RETAIL_NETTING}
    servers = tuple(s.model_copy(update=update) for s in config.servers)
    return config.model_copy(update={"servers": servers})


@contextlib.asynccontextmanager
async def platform_rig(
    connectors: int = 1, rate_limit: int = 100, startup_timeout: float = 120.0
) -> AsyncIterator[Rig]:
    with tempfile.TemporaryDirectory(prefix="mtrobot-bench-") as tmp:
        data_dir = Path(tmp)
        (data_dir / "run").mkdir()
        nats = EmbeddedNats(data_dir / "nats")
        url = await nats.start()
        procs: list[asyncio.subprocess.Process] = []
        nc = await connect(url, "bench")
        try:
            js = nc.jetstream(timeout=10)
            await provision(js)
            config = data_dir / "broker.json"
            config.write_text(bench_broker(rate_limit).model_dump_json())
            sim = await _spawn(data_dir, url, "simbroker", "--port", "0", "--config", str(config))
            procs.append(sim)
            run_file = Settings(data_dir=data_dir).simbroker_file

            async def sim_ready() -> bool:
                return run_file.exists()

            await _wait_for(sim_ready, "simbroker", startup_timeout, sim)
            info = json.loads(run_file.read_text())
            rig = Rig(
                nc, url, [], data_dir, str(info["host"]), int(info["port"]), info["servers"][0],
                SimAdmin.from_run_file(run_file), rate_limit=rate_limit,
            )  # fmt: skip
            rig.pids = {"simbroker": sim.pid}
            if nats.pid is not None:
                rig.pids["nats"] = nats.pid
            recorder = await _spawn(data_dir, url, "recorder")
            procs.append(recorder)
            rig.pids["recorder"] = recorder.pid
            started = []
            for index in range(connectors):
                account = BENCH_ACCOUNT if connectors == 1 else f"{BENCH_ACCOUNT}{index}"
                password = secrets.token_urlsafe(16)
                login = await rig.new_sim_login(password)
                proc = await _spawn(
                    data_dir, url, "connector", "--account", account, "--login", str(login),
                    "--server", rig.server, "--health-port", "0", "--no-recorder",
                    stdin=json.dumps({"password": password}).encode() + b"\n", label=f"connector-{account}",
                )  # fmt: skip
                procs.append(proc)
                started.append((account, proc))
                rig.accounts.append(account)
                rig.pids[f"connector-{account}"] = proc.pid
            for account, proc in started:
                await _wait_for(_has_consumer(js, account), f"connector {account}", startup_timeout, proc)
            await _wait_for(_recorder_ready(js), "recorder", startup_timeout, recorder)
            yield rig
        finally:
            await nc.close()
            for proc in reversed(procs):
                await stop_process(proc)
            await nats.stop()


def _has_consumer(js: object, account: str) -> Callable[[], Awaitable[bool]]:
    filter_subject = subjects.orders_submitted_filter(account)

    async def ready() -> bool:
        with contextlib.suppress(Exception):
            infos = await js.consumers_info(subjects.ORDERS_STREAM)  # type: ignore[attr-defined]
            return any(i.config.filter_subject == filter_subject for i in infos)
        return False

    return ready


def _recorder_ready(js: object) -> Callable[[], Awaitable[bool]]:
    async def ready() -> bool:
        with contextlib.suppress(Exception):
            await js.consumer_info(subjects.FILLS_STREAM, RECORDER_DURABLE)  # type: ignore[attr-defined]
            return True
        return False

    return ready


async def recorder_caught_up(rig: Rig, timeout: float = 60.0) -> bool:
    """Every fill on the bus written by the recorder (so its CPU for this run is all counted)."""
    js = rig.nc.jetstream(timeout=5)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        with contextlib.suppress(Exception):
            info = await js.consumer_info(subjects.FILLS_STREAM, RECORDER_DURABLE)
            if info.num_pending == 0 and info.num_ack_pending == 0:
                return True
        await asyncio.sleep(0.05)
    return False
