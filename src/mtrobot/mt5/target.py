"""Which simulator ``mtrobot.mt5.initialize()`` attaches to, and the demo account a fresh terminal offers.

A real terminal is always "there" for the official module: ``initialize()`` finds it, and without a login it
uses the account the terminal has stored. Here the terminal is the simulator, found in this order:

1. the target given by options (:func:`mtrobot.mt5.configure`, ``mtrobot mt5 run --sim``) or the
   environment variable ``MTROBOT_MT5_SIM``: ``embedded`` (a private simulator in this process), a
   ``simbroker.json`` run file, or ``HOST:PORT`` of a simbroker (then without its admin channel, so no demo
   account can be opened: pass ``login``, ``password`` and ``server``);
2. the simbroker of the platform on this data dir (``DATA_DIR/run/simbroker.json``, written by
   ``mtrobot up`` or ``mtrobot simbroker``);
3. else a private simulator in this process (its books end with the process).

Without a login, a demo account is opened on the first server (or on ``server``), like a fresh terminal's
"open a demo account" dialog, and remembered in ``DATA_DIR/mt5/accounts.json`` (mode 0600, like a
terminal's own ``accounts.dat``) so the next run logs in to the same account.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mtrobot.broker.simclient import TcpTransport, Transport
from mtrobot.core.errors import ConfigError
from mtrobot.files import PRIVATE, write_atomically
from mtrobot.settings import Settings
from mtrobot.sim.admin import LocalAdmin, SimAdmin
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.clock import RealClock, VirtualClock
from mtrobot.sim.config import always_open as always_open_config
from mtrobot.sim.config import default_config
from mtrobot.sim.inprocess import InProcessTransport

ENV_TARGET = "MTROBOT_MT5_SIM"
EMBEDDED = "embedded"
ACCOUNTS_FILE = "accounts.json"
HISTORY_DAYS = 5 * 366
"""Bars and ticks of a private simulator reach this far back (2022's bars are there until 2027)."""


class TargetError(ConfigError):
    """The configured simulator target cannot be used (the message says why)."""


@dataclass
class Simulator:
    """One reachable simulator: how to open a link, its servers, and its back office when we have one."""

    label: str
    transport: Callable[[], Transport]
    servers: list[str]
    admin: LocalAdmin | SimAdmin | None = None
    accounts_file: Path | None = None
    """Where demo accounts opened on this simulator are remembered (None: a private simulator)."""
    broker: SimBroker | None = None
    remembered: dict[str, dict[str, Any]] = field(default_factory=dict)


def _from_run_file(path: Path, accounts_file: Path | None) -> Simulator:
    try:
        info = json.loads(path.read_text())
        host, port = str(info["host"]), int(info["port"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TargetError(f"{path}: not a simbroker run file ({exc})") from None
    return Simulator(
        label=f"simbroker {host}:{port} ({path})",
        transport=lambda: TcpTransport(host, port),
        servers=[str(s) for s in info.get("servers", [])],
        admin=SimAdmin(host, port, token=info.get("admin_token")),
        accounts_file=accounts_file,
    )


def _from_address(address: str) -> Simulator:
    host, _, port_text = address.rpartition(":")
    if not host or not port_text.isdigit():
        raise TargetError(f"{ENV_TARGET}: {address!r} is not 'embedded', a run file or HOST:PORT")
    port = int(port_text)
    return Simulator(f"simbroker {host}:{port}", lambda: TcpTransport(host, port), servers=[])


def embedded(
    broker: SimBroker | None = None,
    *,
    start: datetime | None = None,
    seed: int | None = None,
    always_open: bool = False,
) -> Simulator:
    """A private simulator in this process: ``broker``, or the default configuration with ``seed`` (every
    symbol trading around the clock with ``always_open``), on the real clock or on a clock that starts at
    ``start`` and runs at real speed."""
    if broker is None:
        config = default_config(seed if seed is not None else 42).model_copy(
            update={"history_days": HISTORY_DAYS}
        )
        clock = VirtualClock(start, speed=1.0) if start is not None else RealClock()
        broker = SimBroker(always_open_config(config) if always_open else config, clock)
    target = broker
    return Simulator(
        label="a private simulator in this process",
        transport=lambda: InProcessTransport(target),
        servers=list(target.servers),
        admin=LocalAdmin(target),
        broker=target,
    )


def resolve(spec: str | None = None, settings: Settings | None = None) -> Simulator:
    """The simulator to attach to (see the module docstring for the order)."""
    settings = settings if settings is not None else Settings()
    accounts = settings.data_dir / "mt5" / ACCOUNTS_FILE
    spec = spec if spec is not None else (os.environ.get(ENV_TARGET) or None)
    if spec == EMBEDDED:
        return embedded()
    if spec is not None:
        path = Path(spec).expanduser()
        return _from_run_file(path, accounts) if path.suffix == ".json" else _from_address(spec)
    run_file = settings.simbroker_file
    if run_file.exists() and _alive(run_file):
        return _from_run_file(run_file, accounts)
    return embedded()


def _alive(run_file: Path) -> bool:
    """The run file's simbroker process still exists (a crash can leave the file behind)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        pid = int(json.loads(run_file.read_text())["pid"])
        os.kill(pid, 0)
        return True
    return False


# -- demo accounts ---------------------------------------------------------------------------------------
def remembered_accounts(sim: Simulator) -> dict[str, dict[str, Any]]:
    """server -> {"login", "password"} of the demo accounts opened on this simulator."""
    if sim.accounts_file is None or not sim.accounts_file.exists():
        return sim.remembered
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(sim.accounts_file.read_text())
        if isinstance(data, dict):
            return {str(k): v for k, v in data.items() if isinstance(v, dict)}
    return {}


def remember(sim: Simulator, server: str, login: int, password: str) -> None:
    accounts = remembered_accounts(sim) | {server: {"login": login, "password": password}}
    sim.remembered = accounts
    if sim.accounts_file is None:
        return
    sim.accounts_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomically(sim.accounts_file, json.dumps(accounts), mode=PRIVATE)


async def open_demo_account(sim: Simulator, server: str) -> tuple[int, str]:
    """A new demo account on ``server`` (10,000 USD, 1:100), as a fresh terminal offers one."""
    if sim.admin is None:
        raise TargetError("this simulator has no admin channel: pass login, password and server")
    password = "Demo-" + secrets.token_urlsafe(12)
    login = await sim.admin.create_account(
        server=server,
        password=password,
        investor_password="Inv-" + secrets.token_urlsafe(12),
        name="MT5 script demo",
    )
    remember(sim, server, login, password)
    return login, password
