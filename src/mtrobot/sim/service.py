"""``mtrobot simbroker``: the simulated broker as a service on loopback.

Once listening it writes ``DATA_DIR/run/simbroker.json`` = ``{"host", "port", "servers", "admin_token",
"pid"}`` (mode 0600: the admin token lets its holder create accounts and inject faults), so other parts find
it; on SIGTERM or SIGINT it stops cleanly and removes the file. The books (accounts, positions, orders,
history) are saved to ``DATA_DIR/simbroker/state.json`` (the history appended to ``state.history.jsonl``
beside it, see :mod:`.persistence`) every few seconds and at stop, restored at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
from pathlib import Path

from mtrobot.core.errors import ConfigError
from mtrobot.files import PRIVATE, write_atomically
from mtrobot.logging import get_logger
from mtrobot.settings import SIMBROKER_RUN_FILE, Settings
from mtrobot.sim import persistence
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.clock import Clock
from mtrobot.sim.config import BrokerConfig, default_config
from mtrobot.sim.replay import read_export
from mtrobot.sim.tcp import SimServer

log = get_logger(__name__)

RUN_FILE = SIMBROKER_RUN_FILE
SAVE_EVERY_S = 5.0


def run_file(settings: Settings) -> Path:
    return settings.simbroker_file


def state_file(settings: Settings) -> Path:
    return settings.data_dir / "simbroker" / "state.json"


def load_config(path: Path | None, seed: int | None) -> BrokerConfig:
    if path is None:
        return default_config(seed if seed is not None else 42)
    try:
        config = BrokerConfig.model_validate_json(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"config: {path}: {exc}") from exc
    return config.model_copy(update={"seed": seed}) if seed is not None else config


def write_private_json(path: Path, data: dict[str, object]) -> None:
    """Write atomically, readable by this user only."""
    write_atomically(path, json.dumps(data), mode=PRIVATE)


def parse_replay(spec: str) -> tuple[str, str, Path]:
    """``SERVER:SYMBOL=FILE`` -> its parts."""
    target, sep, file = spec.partition("=")
    server, colon, symbol = target.rpartition(":")
    if not sep or not colon or not server or not symbol or not file:
        raise ConfigError(f"replay: {spec!r} is not SERVER:SYMBOL=FILE")
    return server, symbol, Path(file)


def build_broker(config: BrokerConfig, replays: list[str], clock: Clock | None = None) -> SimBroker:
    broker = SimBroker(config, clock)
    for item in replays:
        server, symbol, file = parse_replay(item)
        spec = broker.server(server).specs.get(symbol)
        if spec is None:
            raise ConfigError(f"replay: {symbol!r} is not a symbol of {server}")
        broker.load_replay(server, symbol, read_export(file, spec.point))
    return broker


async def run_simbroker(
    settings: Settings,
    host: str,
    port: int,
    config: BrokerConfig,
    *,
    replays: list[str] | None = None,
    clock: Clock | None = None,
) -> int:
    settings.ensure_dirs()
    broker = build_broker(config, replays or [], clock)
    state = state_file(settings)
    books = persistence.BooksWriter(state)
    restored = books.load(broker)
    if restored:
        log.info("simbroker state restored", accounts=restored)
    token = secrets.token_urlsafe(24)
    server = SimServer(broker, host, port, admin_token=token)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    path = run_file(settings)
    info = {
        "host": host,
        "port": server.port,
        "servers": list(broker.servers),
        "admin_token": token,
        "pid": os.getpid(),
    }
    write_private_json(path, info)
    try:
        saved = broker.revision()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAVE_EVERY_S)
            if broker.revision() != saved:  # only when the books changed
                saved = broker.revision()
                books.save(broker)
    finally:
        log.info("simbroker stopping")
        await server.stop()
        books.save(broker)
        path.unlink(missing_ok=True)
    return 0
