"""A stand-in mt5linux server: the rpyc classic server mt5linux runs, serving the stand-in MetaTrader5.

``python -m mt5linux`` (mt5linux 1.1.1) is rpyc's ``ClassicServer``: a ``ThreadedServer`` of
``SlaveService`` in the Windows Python next to the terminal. This is the same server in a Linux process, with
``import MetaTrader5`` answering the recording stand-in. Run as ``python -m tests.standin.bridge_server
[--port N] [--field-order mt5linux]``; it prints ``PORT <n>`` once it listens and serves until killed.
Tests drive the stand-in through a second rpyc connection (``conn.modules.MetaTrader5.standin_*``).

``--field-order mt5linux`` plays a bridge whose result types have mt5linux's wrong layouts (TradeOrder with
``volume_current`` before ``volume_initial``, TradePosition with an extra ``position_id``).
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rpyc
from rpyc.utils.server import ThreadedServer

from mtrobot.broker import structures
from mtrobot.broker.backends import open_terminal

from .ctypes_like import c_type
from .fake_mt5 import FakeMT5
from .sim_module import SimModule

REPO_ROOT = Path(__file__).resolve().parents[2]


def mt5linux_layouts() -> dict[str, Any]:
    order = list(structures.TradeOrder._fields)
    i, j = order.index("volume_initial"), order.index("volume_current")
    order[i], order[j] = order[j], order[i]
    position = [*structures.TradePosition._fields, "position_id"]
    return {"TradeOrder": c_type("TradeOrder", order), "TradePosition": c_type("TradePosition", position)}


class BridgedSim(SimModule):
    """The simulator as the bridge's MetaTrader5: each connection gets a session on the simbroker that the
    test named last with :meth:`standin_target` (tests run one venue at a time)."""

    def __init__(self) -> None:
        super().__init__(self._open)
        self._target: tuple[int, dict[str, Any]] | None = None

    def standin_target(self, port: int, options: tuple[tuple[str, Any], ...] = ()) -> None:
        self._target = (port, dict(options))

    def _open(self) -> Any:
        if self._target is None:
            raise RuntimeError("no simbroker named yet: call standin_target(port) first")
        port, options = self._target
        return open_terminal("sim", host="127.0.0.1", port=port, **options)


def serve(port: int, field_order: str, with_mt5: bool = True, module: str = "standin") -> None:
    fake: Any
    if module == "sim":
        fake = BridgedSim()
    elif field_order == "mt5linux":  # the extra field gets a value that must never reach our structures
        fake = FakeMT5(types=mt5linux_layouts(), extra_values={"position_id": 999_999_999})
    else:
        fake = FakeMT5()
    if with_mt5:
        sys.modules["MetaTrader5"] = fake  # type: ignore[assignment]
    else:  # a Wine Python where MetaTrader5 was never installed
        sys.modules["MetaTrader5"] = None  # type: ignore[assignment]
    server = ThreadedServer(
        rpyc.SlaveService,
        hostname="127.0.0.1",
        port=port,
        reuse_addr=True,
        protocol_config={"sync_request_timeout": 60},
    )
    server._listen()  # listen before announcing the port (start() would only listen later)
    print(f"PORT {server.port}", flush=True)
    server.start()


@dataclass
class BridgeProcess:
    """A running stand-in bridge server and a control connection to its stand-in module."""

    process: subprocess.Popen[str]
    port: int
    _control: Any = None

    @property
    def mt5(self) -> Any:
        """The server's stand-in module, through a separate rpyc connection (for scripting faults)."""
        if self._control is None or self._control.closed:
            self._control = rpyc.classic.connect("127.0.0.1", self.port)
        return self._control.modules["MetaTrader5"]

    def kill(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def _announced_port(process: subprocess.Popen[str], timeout: float = 30.0) -> int:
    """The port from the server's ``PORT <n>`` line (printed once it listens; logs may come first). One
    thread reads everything the server writes, so a full pipe can never stall it."""
    ports: queue.Queue[int | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("PORT "):
                ports.put(int(line.split()[1]))
        ports.put(None)  # the server exited

    threading.Thread(target=read, name="bridge-stdout", daemon=True).start()
    try:
        port = ports.get(timeout=timeout)
    except queue.Empty:
        port = None
    if port is None:
        raise RuntimeError(f"stand-in bridge did not start (exit code {process.poll()})")
    return port


@contextmanager
def running_bridge(
    port: int = 0, field_order: str = "mt5", with_mt5: bool = True, module: str = "standin"
) -> Iterator[BridgeProcess]:
    """Start the stand-in server in its own process (serving the recording stand-in, or with ``module="sim"``
    the simulator dressed as MetaTrader5); kill it on exit."""
    options = ["--port", str(port), "--field-order", field_order, "--module", module]
    options += [] if with_mt5 else ["--without-mt5"]
    command = [sys.executable, "-m", "tests.standin.bridge_server", *options]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    bridge: BridgeProcess | None = None
    try:
        bridge = BridgeProcess(process, _announced_port(process))
        yield bridge
    finally:
        if bridge is not None:
            bridge.kill()
        elif process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--field-order", choices=("mt5", "mt5linux"), default="mt5")
    parser.add_argument("--without-mt5", action="store_true")
    parser.add_argument("--module", choices=("standin", "sim"), default="standin")
    options = parser.parse_args()
    serve(options.port, options.field_order, with_mt5=not options.without_mt5, module=options.module)


if __name__ == "__main__":
    main()
