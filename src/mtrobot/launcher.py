"""``mtrobot up``: the embedded platform on one machine.

It starts (or attaches to) NATS, provisions streams and buckets, then runs each part as a child process
(``python -m mtrobot PART``). Children die with it: on Ctrl-C or SIGTERM each gets SIGTERM, then SIGKILL
after a grace period, and on Linux the kernel's parent-death signal covers a SIGKILLed launcher too.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from nats.aio.client import Client

from mtrobot.bus import identity
from mtrobot.bus.connect import connect, provision
from mtrobot.bus.identity import BusAuthority
from mtrobot.bus.server import EmbeddedNats, free_port
from mtrobot.core.agent import LAUNCHER_SUPERVISOR_GRACE_S
from mtrobot.core.errors import FatalError, MtrobotError
from mtrobot.hub.token import ensure_hub_token, hub_token_path
from mtrobot.logging import get_logger
from mtrobot.proc import inherited_env, spawn_mtrobot, stop_process
from mtrobot.settings import Settings

log = get_logger(__name__)

RESTART_BACKOFF_CAP_S = 30.0
STABLE_AFTER_S = 60.0
"""A part that ran this long before it exited was stable: its restart backoff starts over."""


def next_restart(
    restarts: int, ran_for_s: float, stable_after_s: float = STABLE_AFTER_S
) -> tuple[int, float]:
    """The restart count and delay after an exit: doubling from 1 s up to the cap, and back to 1 s once the
    part had run stably (a crash a day must not wait 30 s because of the crashes of last week)."""
    restarts = 1 if ran_for_s >= stable_after_s else restarts + 1
    return restarts, min(RESTART_BACKOFF_CAP_S, 0.5 * 2 ** min(restarts, 10))


@dataclass(frozen=True)
class Part:
    """One embedded part: the ``mtrobot`` subcommand that runs it and what to tell the operator."""

    name: str
    args: tuple[str, ...] = ()
    where: str = ""
    label: str = ""
    stdin: bytes | None = None
    """Written to the child's standard input, then closed: how secrets reach a child (never argv/env)."""
    stdin_source: Callable[[], Awaitable[bytes]] | None = None
    """Like ``stdin``, but computed at each (re)start, e.g. a fresh credentials hand-off."""
    master_key: bool = False
    """Only parts that seal, open or rotate credentials see ``MTROBOT_MASTER_KEY`` in their environment."""
    stop_grace_s: float = 10.0
    """How long a stop waits after SIGTERM before SIGKILL (the supervisor's covers its agents' stops)."""
    env: tuple[tuple[str, str], ...] = ()


@dataclass
class RunningPart:
    part: Part
    process: asyncio.subprocess.Process
    restarts: int = 0
    started_at: float = field(default_factory=time.monotonic)


@dataclass
class UpOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    demo: bool = True


PartsFactory = Callable[[Settings, UpOptions, str], list[Part]]


def embedded_parts(settings: Settings, options: UpOptions, nats_url: str) -> list[Part]:
    """The parts `mtrobot up` runs, in start order. Each later part adds itself here."""
    parts: list[Part] = [Part("simbroker", where=str(settings.simbroker_file), label="simbroker")]
    hub_port = free_port()  # loopback only, whatever host the web interface uses
    ensure_hub_token(settings)  # there before the hub starts, for whoever is handed it
    where = f"http://127.0.0.1:{hub_port} (token in {hub_token_path(settings)})"
    parts.append(Part("hub", ("--port", str(hub_port)), where=where, label="hub"))
    parts.append(
        Part(
            "recorder",
            where="fills -> executions" + (", audit -> kafka" if settings.kafka_bootstrap else ""),
            label="recorder",
        )
    )
    parts.append(web_part(settings, options))
    parts.append(supervisor_part(settings))
    return parts


def supervisor_part(settings: Settings) -> Part:
    """The supervisor: one agent per account whose agent should run (the demo account is one of them). It
    unwraps each account's data key, so it sees the master key; its agents never do."""
    where = f"one agent per active account (see {settings.run_dir / 'agents.json'})"
    return Part(
        "supervisor",
        where=where,
        label="supervisor",
        master_key=True,
        stop_grace_s=LAUNCHER_SUPERVISOR_GRACE_S,
    )


def web_part(settings: Settings, options: UpOptions) -> Part:
    """The web API and pages; ``--port 0`` picks a free port here so the printed URL is the real one. With the
    demo on, the web creates the demo trader once the simulator is up, and its login is printed here."""
    from mtrobot.web.demo import demo_login

    port = options.port or free_port(options.host if options.host not in ("0.0.0.0", "::") else "127.0.0.1")
    shown = "127.0.0.1" if options.host in ("0.0.0.0", "::", "") else options.host
    where = f"http://{shown}:{port}"
    args: tuple[str, ...] = ("--host", options.host, "--port", str(port))
    if options.demo:
        login = demo_login(settings)
        where += f"  (demo login: {login.email} / {login.password})"
        args += ("--demo",)
    return Part("web", args, where=where, label="web", master_key=True)


class DataDirLock:
    """One ``mtrobot up`` per data dir: a second one is refused with a clear message."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: IO[str] | None = None

    def __enter__(self) -> DataDirLock:
        self._file = open(self._path, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            owner = self._file.read().strip() or "another process"
            self._file.close()
            raise FatalError(f"{self._path.parent.parent} is in use by mtrobot up (pid {owner})") from None
        self._file.truncate(0)
        self._file.write(str(os.getpid()))
        self._file.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()


class Launcher:
    def __init__(
        self,
        settings: Settings,
        options: UpOptions,
        parts_factory: PartsFactory = embedded_parts,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.settings = settings
        self.options = options
        self._parts_factory = parts_factory
        self._echo = echo
        self._nats: EmbeddedNats | None = None
        self._running: list[RunningPart] = []
        self._stopping = asyncio.Event()
        self._watchers: list[asyncio.Task[None]] = []
        self.stable_after_s = STABLE_AFTER_S
        self.nc: Client | None = None

    async def run(self) -> int:
        self.settings.ensure_dirs()
        with DataDirLock(self.settings.run_dir / "up.lock"):
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._stopping.set)
            try:
                url = await self._start_bus()
                for part in self._parts_factory(self.settings, self.options, url):
                    try:
                        self._running.append(RunningPart(part, await self._spawn(part, url)))
                    except MtrobotError as exc:
                        log.error("part not started", part=part.label or part.name, error=str(exc))
                        self._echo(f"  {part.label or part.name}: NOT STARTED: {exc}")
                self._report(url)
                self._watchers = [
                    asyncio.create_task(self._watch(rp, url), name=f"watch-{rp.part.name}")
                    for rp in self._running
                ]
                await self._stopping.wait()
                self._echo("stopping...")
            finally:
                await self._stop_all()
                self._echo("stopped")
        return 0

    async def _start_bus(self) -> str:
        if self.settings.nats_url:
            url = self.settings.nats_url
            identity.forget_service_creds(self.settings)  # minted for an embedded bus that is gone
            log.warning(identity.EXTERNAL_WARNING, url=url, creds=bool(self.settings.nats_creds))
        else:
            auth = identity.prepare_embedded(self.settings)
            self._nats = EmbeddedNats(self.settings.nats_store_dir, auth=auth)
            url = await self._nats.start()
        self.nc = await connect(
            url,
            "mtrobot-up",
            max_reconnect_attempts=5,
            creds=identity.service_creds(self.settings, "launcher"),
            inbox_prefix=identity.service_inbox("launcher"),
        )
        provisioned = await provision(self.nc.jetstream(timeout=10))
        self.settings.nats_url_file.write_text(url)
        log.info("bus ready", url=url, provisioned=provisioned, embedded=self._nats is not None)
        return url

    def bus_authority(self, url: str) -> BusAuthority:
        """Agents' bus identities (the demo connector's, until the supervisor starts agents)."""
        assert self.nc is not None
        return BusAuthority(self.settings.model_copy(update={"nats_url": url}), url, self.nc)

    def child_env(self, url: str, part: Part) -> dict[str, str]:
        env = inherited_env()  # MTROBOT_MASTER_KEY is added back only for a part that declares it needs it
        if part.master_key and "MTROBOT_MASTER_KEY" in os.environ:
            env["MTROBOT_MASTER_KEY"] = os.environ["MTROBOT_MASTER_KEY"]
        env.update(MTROBOT_NATS_URL=url, MTROBOT_DATA_DIR=str(self.settings.data_dir))
        return env | dict(part.env)

    async def _spawn(self, part: Part, url: str) -> asyncio.subprocess.Process:
        return await spawn_mtrobot(
            (part.name, *part.args),
            env=self.child_env(url, part),
            log_path=self.settings.data_dir / "logs" / f"{part.label or part.name}.log",
            stdin=part.stdin if part.stdin_source is None else await part.stdin_source(),
        )

    async def _watch(self, rp: RunningPart, url: str) -> None:
        """Restart a part that dies on its own, with capped exponential backoff."""
        while not self._stopping.is_set():
            code = await rp.process.wait()
            ran_for = time.monotonic() - rp.started_at
            while not self._stopping.is_set():
                rp.restarts, delay = next_restart(rp.restarts, ran_for, self.stable_after_s)
                ran_for = 0.0  # a failed restart attempt did not run at all
                log.error(
                    "part exited, restarting", part=rp.part.label or rp.part.name, code=code, in_s=delay
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    return
                try:
                    rp.process = await self._spawn(rp.part, url)
                    rp.started_at = time.monotonic()
                    break
                except MtrobotError as exc:
                    log.error(
                        "part could not be restarted", part=rp.part.label or rp.part.name, error=str(exc)
                    )

    async def _stop_all(self) -> None:
        self._stopping.set()
        for task in self._watchers:
            task.cancel()
        for rp in reversed(self._running):
            if rp.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    rp.process.terminate()
        for rp in reversed(self._running):
            if await stop_process(rp.process, rp.part.stop_grace_s):
                log.warning("part ignored SIGTERM and was killed", part=rp.part.name)
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.close(), 5)
        if self._nats is not None:
            await self._nats.stop()
            identity.forget_service_creds(self.settings)
        with contextlib.suppress(FileNotFoundError):
            self.settings.nats_url_file.unlink()

    def _report(self, url: str) -> None:
        origin = "embedded, JWT accounts" if self._nats else "external"
        lines = [f"mtrobot is up (data dir {self.settings.data_dir})", f"  nats        {url}  ({origin})"]
        if self._nats:
            lines.append(f"  nats admin  {identity.creds_path(self.settings, 'admin')}")
        else:
            lines.append(f"  WARNING     {identity.EXTERNAL_WARNING}")
        for rp in self._running:
            lines.append(
                f"  {rp.part.label or rp.part.name:<11} {rp.part.where or 'running'}  (pid {rp.process.pid})"
            )
        lines.append("Press Ctrl-C to stop.")
        self._echo("\n".join(lines))
