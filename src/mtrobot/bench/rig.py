"""A throw-away platform for a benchmark: embedded NATS, ``mtrobot simbroker`` and one ``mtrobot connector``
as real child processes, exactly as ``mtrobot up`` runs them, in a temporary data dir."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from nats.aio.client import Client

from mtrobot.bus import subjects
from mtrobot.bus.connect import connect, provision
from mtrobot.bus.server import EmbeddedNats
from mtrobot.core.errors import FatalError
from mtrobot.proc import inherited_env, spawn_mtrobot, stop_process
from mtrobot.sim.admin import SimAdmin
from mtrobot.sim.config import always_open, default_config

BENCH_ACCOUNT = "bench"


@dataclass
class Rig:
    nc: Client
    account: str
    data_dir: Path


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
    data_dir: Path, url: str, *args: str, stdin: bytes | None = None
) -> asyncio.subprocess.Process:
    env = inherited_env() | {"MTROBOT_NATS_URL": url, "MTROBOT_DATA_DIR": str(data_dir)}
    return await spawn_mtrobot(args, env=env, log_path=data_dir / f"{args[0]}.log", stdin=stdin)


@contextlib.asynccontextmanager
async def platform_rig(startup_timeout: float = 60.0) -> AsyncIterator[Rig]:
    with tempfile.TemporaryDirectory(prefix="mtrobot-bench-") as tmp:
        data_dir = Path(tmp)
        (data_dir / "run").mkdir()
        nats = EmbeddedNats(data_dir / "nats")
        url = await nats.start()
        procs: list[asyncio.subprocess.Process] = []
        nc = await connect(url, "bench")
        try:
            await provision(nc.jetstream(timeout=10))
            config = data_dir / "broker.json"
            config.write_text(always_open(default_config(42)).model_dump_json())
            sim = await _spawn(data_dir, url, "simbroker", "--port", "0", "--config", str(config))
            procs.append(sim)
            run_file = data_dir / "run" / "simbroker.json"

            async def sim_ready() -> bool:
                return run_file.exists()

            await _wait_for(sim_ready, "simbroker", startup_timeout, sim)
            admin = SimAdmin.from_run_file(run_file)
            server = json.loads(run_file.read_text())["servers"][0]
            password = secrets.token_urlsafe(16)
            login = await admin.create_account(
                server=server,
                password=password,
                investor_password=secrets.token_urlsafe(16),
                balance=10_000_000.0,
            )
            connector = await _spawn(
                data_dir, url, "connector", "--account", BENCH_ACCOUNT, "--login", str(login),
                "--server", server, "--health-port", "0",
                stdin=json.dumps({"password": password}).encode() + b"\n",
            )  # fmt: skip
            procs.append(connector)
            js = nc.jetstream(timeout=5)
            filter_subject = subjects.orders_submitted_filter(BENCH_ACCOUNT)

            async def connector_ready() -> bool:
                with contextlib.suppress(Exception):
                    infos = await js.consumers_info(subjects.ORDERS_STREAM)
                    return any(i.config.filter_subject == filter_subject for i in infos)
                return False

            await _wait_for(connector_ready, "connector", startup_timeout, connector)
            yield Rig(nc, BENCH_ACCOUNT, data_dir)
        finally:
            await nc.close()
            for proc in reversed(procs):
                await stop_process(proc)
            await nats.stop()
