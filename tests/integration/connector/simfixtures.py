"""A real TCP simbroker (``mtrobot simbroker`` in a child process) for the connector's tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mtrobot.settings import Settings


@dataclass
class SimBrokerProcess:
    host: str
    port: int
    servers: list[str]
    token: str
    run_file: Path

    def admin(self) -> Any:
        from mtrobot.sim.admin import SimAdmin

        return SimAdmin(self.host, self.port, token=self.token)

    def terminal(self) -> Any:
        from mtrobot.broker.backends import open_terminal

        return open_terminal("sim", host=self.host, port=self.port)


def always_open_config(path: Path) -> Path:
    """The built-in broker, but every symbol trades at weekends and there is no daily break: the tests of the
    order path must not depend on the day or the hour they run at (maintenance is injected where tested)."""
    from mtrobot.sim.config import always_open, default_config

    path.write_text(always_open(default_config(42)).model_dump_json())
    return path


@pytest.fixture(scope="session")
def simbroker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimBrokerProcess]:
    with running_simbroker(tmp_path_factory.mktemp("simbroker")) as (_, broker):
        yield broker


@contextlib.contextmanager
def running_simbroker(data: Path) -> Iterator[tuple[subprocess.Popen[bytes], SimBrokerProcess]]:
    """``mtrobot simbroker`` in ``data``, until the block ends (a test may kill it before)."""
    config = always_open_config(data / "broker.json")
    log = open(data / "simbroker.log", "wb")  # noqa: SIM115 - the child writes it
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mtrobot",
            "simbroker",
            "--data-dir",
            str(data),
            "--port",
            "0",
            "--config",
            str(config),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    run_file = Settings(data_dir=data).simbroker_file
    deadline = time.monotonic() + 30
    while not run_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"simbroker did not start: {(data / 'simbroker.log').read_text()[-2000:]}")
        time.sleep(0.05)
    info = json.loads(run_file.read_text())
    try:
        yield (
            proc,
            SimBrokerProcess(
                info["host"], int(info["port"]), list(info["servers"]), info["admin_token"], run_file
            ),
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
