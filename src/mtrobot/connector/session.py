"""The broker session: connecting → connected → (dead) → backoff → connecting, with maintenance windows.

- Reconnects wait a full-jitter exponential backoff between the configured base and cap.
- Inside a configured maintenance window no login is attempted: the state is ``maintenance`` until it ends.
- Every login first takes a token from the host-wide per-server bucket (:mod:`.ratelimit`).
- After repeated failed logins the circuit breaker (:mod:`.breaker`) opens: no login until its half-open
  trial, on a doubling schedule; orders are held meanwhile.
- A keepalive reads ``terminal_info`` well inside the broker's 30 s inactivity timeout; a failed keepalive,
  a disconnected terminal or a link-level failure reported by the order path ends the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from pydantic import SecretStr

from mtrobot.broker import constants as mt5
from mtrobot.broker.retcodes import is_link_failure
from mtrobot.broker.terminal import Terminal
from mtrobot.core.events import ConnectionState
from mtrobot.logging import get_logger

from .breaker import CircuitBreaker
from .credentials import Credentials
from .link import BrokerLink
from .options import OptionsHolder
from .ratelimit import LoginRateLimiter

log = get_logger(__name__)

TerminalFactory = Callable[[], Terminal]
Listener = Callable[[], Awaitable[None]]
CredentialsRefresh = Callable[[], Awaitable[Credentials]]
AUTH_FAILED = mt5.RES_E_AUTH_FAILED


class Session:
    """Owns the terminal of one account and keeps it logged in. See the module docstring."""

    def __init__(
        self,
        account: str,
        link: BrokerLink,
        options: OptionsHolder,
        terminal_factory: TerminalFactory,
        password: SecretStr,
        limiter: LoginRateLimiter,
        *,
        rng: random.Random | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        refresh: CredentialsRefresh | None = None,
    ) -> None:
        self.account = account
        self.link = link
        self.options = options
        self._factory = terminal_factory
        self._password = password
        self._limiter = limiter
        self._rng = rng or random.Random()
        self._now = now
        self._refresh = refresh
        self.state = ConnectionState.CONNECTING
        self._ready = asyncio.Event()
        self._dead = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Listener] = []
        self.connects = 0
        self.failed_logins = 0
        self.backoff_delays: list[float] = []
        self.last_error: tuple[int, str] | None = None
        self.disconnected_at: float | None = None
        self.last_reconnect_s: float | None = None
        self.breaker = CircuitBreaker(options.current.breaker, options.current.reconnect_backoff.cap)

    # -- public ------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def on_connected(self, listener: Listener) -> None:
        """Called after every successful (re)connect, e.g. to reconcile."""
        self._listeners.append(listener)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"session-{self.account}")

    async def stop(self) -> None:
        self._stopping.set()
        self._dead.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_terminal()
        self.state = ConnectionState.STOPPED

    async def wait_ready(self, timeout: float) -> bool:
        if self._ready.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self._ready.is_set()

    def notice_failure(self, error: tuple[int, str]) -> None:
        """The order path saw a link-level failure: check the session now rather than at the next ping."""
        if is_link_failure(error[0]):
            self._dead.set()

    # -- the loop ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            left = self._maintenance_left()
            if left > 0:
                self.state = ConnectionState.MAINTENANCE
                log.info("broker maintenance window: no login", account=self.account, seconds=round(left, 1))
                await self._sleep(min(left, 60.0))
                continue
            self.state = ConnectionState.CONNECTING
            if await self._connect():
                failures = 0
                self.breaker.success()
                await self._serve()
                continue
            failures += 1
            self.breaker.failure(self.last_error[1] if self.last_error else "")
            refused = bool(self.last_error and self.last_error[0] == AUTH_FAILED)
            if refused and self._refresh is not None and await self._refresh_credentials():
                continue  # a new password: try it at once (the login bucket still applies)
            delay = self.options.current.reconnect_backoff.delay(failures, self._rng)
            delay = max(delay, self.breaker.wait_s())  # open: no login until the half-open trial
            self.backoff_delays.append(delay)
            self.state = ConnectionState.BACKOFF
            log.warning(
                "broker login failed, backing off",
                account=self.account,
                error=self.last_error,
                attempt=failures,
                delay_s=round(delay, 3),
                breaker=self.breaker.state.value,
            )
            await self._sleep(delay)

    async def _refresh_credentials(self) -> bool:
        """The stored password may have been replaced since we read it: read it again. True if it changed."""
        assert self._refresh is not None
        try:
            creds = await self._refresh()
        except Exception as exc:
            log.warning("credentials could not be read again", account=self.account, error=str(exc))
            return False
        changed = creds.password.get_secret_value() != self._password.get_secret_value()
        self._password = creds.password
        changes = {k: v for k, v in (("login", creds.login), ("server", creds.server)) if v is not None}
        if changes:
            self.options.replace(self.options.current.with_changes(**changes))
        return changed

    def _maintenance_left(self) -> float:
        now = self._now()
        return max((w.seconds_left(now) for w in self.options.current.maintenance), default=0.0)

    async def _connect(self) -> bool:
        opts = self.options.current
        try:
            # The login holds its server's bucket until answered: as long as the call below may take.
            await self._limiter.acquire(
                timeout=max(opts.login_timeout_s, 60.0), lease_s=opts.login_timeout_s + 10.0
            )
        except TimeoutError as exc:
            self.last_error = (-10005, str(exc))
            return False
        try:
            await self._close_terminal()
            try:
                self.link.terminal = self._factory()
            except Exception as exc:
                self.last_error = (-10003, f"terminal could not be opened: {exc}")
                return False
            logged_in = await self._initialize()
        finally:
            # Answered, failed or never sent: the bucket refills from now (the thread finishes even if this
            # task is cancelled meanwhile).
            await asyncio.to_thread(self._limiter.release)
        if not logged_in:
            self.failed_logins += 1
            return False
        if not await self._healthy():
            return False
        self.connects += 1
        if self.disconnected_at is not None:
            self.last_reconnect_s = time.monotonic() - self.disconnected_at
        self._dead.clear()
        self._ready.set()
        self.state = ConnectionState.CONNECTED
        log.info("broker session connected", account=self.account, connects=self.connects)
        for listener in list(self._listeners):
            try:
                await listener()
            except Exception as exc:  # a listener must not take the session down
                log.error("session listener failed", account=self.account, error=str(exc))
        return True

    async def _initialize(self) -> bool:
        opts = self.options.current
        result = await self.link.call(
            "initialize",
            login=opts.login,
            password=self._password.get_secret_value(),
            server=opts.server,
            timeout=int(opts.login_timeout_s * 1000),
            call_timeout=opts.login_timeout_s + 5.0,
        )
        if not result.ok:
            self.last_error = result.error
            return False
        return True

    async def _healthy(self) -> bool:
        info = await self.link.call("terminal_info", call_timeout=self.options.current.call_timeout_s)
        if not info.ok or not info.value.connected:
            self.last_error = info.error or (10031, "terminal not connected to the trade server")
            return False
        return True

    async def _serve(self) -> None:
        """Keep the session alive until it dies or the connector stops."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dead.wait(), self.options.current.keepalive_s)
            if self._stopping.is_set():
                break
            self._dead.clear()
            if self._maintenance_left() > 0 or not await self._healthy():
                break
        self._ready.clear()
        self.disconnected_at = time.monotonic()
        if not self._stopping.is_set():
            log.warning("broker session lost", account=self.account, error=self.last_error)

    async def _close_terminal(self) -> None:
        terminal, self.link.terminal = self.link.terminal, None
        if terminal is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(terminal.shutdown(), 2.0)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
