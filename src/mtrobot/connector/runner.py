"""``mtrobot connector --account ID``: a stand-alone connector with its health server, until SIGTERM.

The broker password arrives on standard input as one JSON line (``{"password": "..."}``), never in argv or
in another process's environment; a connector started by hand may use ``MT5_PASSWORD`` instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr

from mtrobot.broker.backends import open_terminal
from mtrobot.broker.terminal import Terminal
from mtrobot.core.errors import ConfigError
from mtrobot.logging import get_logger
from mtrobot.settings import Settings

from .credentials import EXIT_REHANDOFF, Credentials, open_handoff
from .intake_limit import OrderLimit
from .options import ConnectorOptions
from .service import Connector, ConnectorParts

log = get_logger(__name__)


def read_credentials(stream: TextIO | None = None) -> dict[str, Any]:
    """Credentials from one JSON line on stdin (when stdin is not a terminal): ``{"password": ...}`` or a
    supervisor's ``{"handoff": ...}``; else ``MT5_PASSWORD``."""
    stream = stream or sys.stdin
    if stream is not None and not stream.isatty():
        line = stream.readline().strip()
        if line:
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                raise ConfigError(
                    'credentials on stdin must be one JSON line such as {"password": ...}'
                ) from None
            if isinstance(data, dict) and isinstance(data.get("handoff"), dict):
                return data
            if not isinstance(data, dict) or not isinstance(data.get("password"), str):
                raise ConfigError("credentials on stdin need a string field 'password' (or a 'handoff')")
            return data
    password = os.environ.pop("MT5_PASSWORD", None)  # do not pass it on to any child
    if password:
        return {"password": password}
    raise ConfigError('no broker password: send {"password": ...} on stdin or set MT5_PASSWORD')


def sim_endpoint(settings: Settings) -> tuple[str, int]:
    """Where `mtrobot simbroker` listens, from the file it writes into the run dir."""
    path = settings.simbroker_file
    if not path.exists():
        raise ConfigError(
            f"no simulated broker announced in {path}: start `mtrobot simbroker` or `mtrobot up`"
        )
    info = json.loads(path.read_text())
    return str(info["host"]), int(info["port"])


def terminal_factory(
    backend: str, settings: Settings, options: ConnectorOptions | Callable[[], ConnectorOptions]
) -> Any:
    """Opens a new ``backend`` terminal at every (re)connect. Given a callable, it reads the options current
    *then* (the terminal options are the process's own: the hub cannot change them)."""

    def factory() -> Terminal:
        current = options() if callable(options) else options
        extra = dict(current.terminal_options) if current.backend == backend else {}
        if backend == "sim" and "port" not in extra:
            host, port = sim_endpoint(settings)
            extra.update(host=host, port=port)
        return open_terminal(backend, **extra)

    return factory


def default_parts(backend: str, settings: Settings, options: ConnectorOptions) -> ConnectorParts:
    return ConnectorParts(terminal_factory=terminal_factory(backend, settings, options))


async def start_recorder(settings: Settings) -> asyncio.subprocess.Process | None:
    """The original stand-alone connector also wrote executions and the Kafka mirror: that is the recorder's
    job now, so a stand-alone connector runs ``mtrobot recorder`` beside it (a child process: no database
    engine or Kafka client enters the connector). None when no bus is known yet."""
    from mtrobot.proc import inherited_env, spawn_mtrobot

    url = settings.discover_nats_url()
    if not url:
        return None
    env = inherited_env() | {"MTROBOT_NATS_URL": url, "MTROBOT_DATA_DIR": str(settings.data_dir)}
    log_path = settings.data_dir / "logs" / "recorder.log"
    return await spawn_mtrobot(("recorder",), env=env, log_path=log_path)


async def run_standalone(
    account: str,
    settings: Settings,
    credentials: dict[str, Any],
    *,
    backend: str = "sim",
    health_port: int = 8014,
    options: ConnectorOptions | None = None,
    port_file: Path | None = None,
    recorder: bool = True,
) -> int:
    from .failpoints import Failpoints
    from .health import HealthServer

    settings.ensure_dirs()
    refresh = None
    exit_code = 0
    stopping = asyncio.Event()
    bus = credentials.get("bus") or {}  # the agent's bus identity, from whoever started it
    own_account = bus.get("inbox_prefix") is not None  # its own NATS account: no hub, no provisioning
    if "handoff" in credentials:
        creds = open_handoff(account, credentials)
        credentials = {
            "password": creds.password.get_secret_value(),
            "login": creds.login,
            "server": creds.server,
        }

        async def refresh() -> Credentials:
            # Refused: the stored password may have been replaced. Only the supervisor can read it again.
            nonlocal exit_code
            log.warning(
                "broker refused the handed-off password; asking for a fresh hand-off", account=account
            )
            exit_code = EXIT_REHANDOFF
            stopping.set()
            return creds

    opts = options or ConnectorOptions()
    opts = opts.with_changes(
        backend=backend,
        login=int(credentials["login"]) if credentials.get("login") else opts.login,
        server=str(credentials["server"]) if credentials.get("server") else opts.server,
        order_limit=OrderLimit.of(settings),
    )
    parts = default_parts(backend, settings, opts)
    parts.bus_creds, parts.inbox_prefix = bus.get("creds"), bus.get("inbox_prefix")
    connector = Connector(
        account,
        settings,
        SecretStr(credentials["password"]),
        opts,
        parts,
        use_hub=not own_account,
        failpoints=Failpoints(),
        refresh=refresh,
    )
    parts.terminal_factory = terminal_factory(backend, settings, lambda: connector.options.current)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await connector.start()
    recorder_proc = await start_recorder(settings) if recorder else None
    health = HealthServer(connector, port=health_port)
    health.start()
    where = {"account": account, "health_port": health.port, "pid": os.getpid()}
    (port_file or settings.run_dir / f"connector-{account}.json").write_text(json.dumps(where))
    log.info("connector running", **where)
    try:
        await stopping.wait()
    finally:
        await health.stop()
        await connector.stop()
        if recorder_proc is not None:
            from mtrobot.proc import stop_process

            await stop_process(recorder_proc)
    return exit_code
