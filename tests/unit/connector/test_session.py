"""The broker session: backoff schedule, maintenance windows, keepalive and dead-session detection."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from mtrobot.connector.audit import AuditTrail
from mtrobot.connector.backoff import Backoff
from mtrobot.connector.link import BrokerLink
from mtrobot.connector.options import ConnectorOptions, MaintenanceWindow, OptionsHolder
from mtrobot.connector.ratelimit import LoginRate, LoginRateLimiter
from mtrobot.connector.session import Session
from mtrobot.core.events import ConnectionState

from .fake_terminal import FakeBroker, FakeTerminal


class FlakyTerminal(FakeTerminal):
    """Refuses the first ``fail`` logins; can be told to drop its connection."""

    logins = 0

    def __init__(self, broker: FakeBroker, fail: int, plan: dict[str, Any]) -> None:
        super().__init__(broker)
        self.fail = fail
        self.plan = plan

    async def initialize(self, *a: Any, **kw: Any) -> bool:
        self.plan["logins"] = self.plan.get("logins", 0) + 1
        self.plan.setdefault("passwords", []).append(kw.get("password"))
        if self.plan["logins"] <= self.fail:
            self._error = (-10005, "IPC timeout")
            return False
        return True

    async def terminal_info(self) -> Any:
        if self.plan.get("dead"):
            self._error = (-10004, "No IPC connection")
            return None
        return await super().terminal_info()


def make_session(tmp_path: Path, fail: int, plan: dict[str, Any], **opts: Any) -> Session:
    options = OptionsHolder(
        ConnectorOptions(**({"reconnect_backoff": Backoff(0.01, 0.08), "keepalive_s": 0.05} | opts))
    )
    link = BrokerLink(None, AuditTrail("s1", tmp_path / "spool", {}), 2.0)
    limiter = LoginRateLimiter(tmp_path / "run", "Sim-Demo", LoginRate(1000, 1000))
    broker = FakeBroker()
    return Session(
        "s1",
        link,
        options,
        lambda: FlakyTerminal(broker, fail, plan),
        SecretStr("s3cret"),
        limiter,
        rng=random.Random(3),
    )


async def until(predicate: Any, timeout: float = 5.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and not predicate():
        await asyncio.sleep(0.01)
    return bool(predicate())


async def test_failed_logins_back_off_within_the_full_jitter_schedule_then_connect(tmp_path: Path) -> None:
    plan: dict[str, Any] = {}
    session = make_session(tmp_path, fail=4, plan=plan)
    session.start()
    assert await session.wait_ready(5.0)
    await session.stop()
    assert plan["logins"] == 5 and len(session.backoff_delays) == 4
    schedule = Backoff(0.01, 0.08)
    for attempt, delay in enumerate(session.backoff_delays, start=1):
        assert schedule.base <= delay <= schedule.ceiling(attempt)


async def test_a_dead_session_is_noticed_by_the_keepalive_and_reconnected(tmp_path: Path) -> None:
    plan: dict[str, Any] = {}
    session = make_session(tmp_path, fail=0, plan=plan)
    reconnected = asyncio.Event()

    async def on_connect() -> None:
        if session.connects > 1:
            reconnected.set()

    session.on_connected(on_connect)
    session.start()
    assert await session.wait_ready(5.0)
    plan["dead"] = True
    assert await until(lambda: not session.ready)
    plan["dead"] = False
    await asyncio.wait_for(reconnected.wait(), 5)
    assert session.connects == 2 and session.last_reconnect_s is not None
    await session.stop()


async def test_a_link_failure_seen_by_the_order_path_ends_the_session_at_once(tmp_path: Path) -> None:
    plan: dict[str, Any] = {}
    session = make_session(tmp_path, fail=0, plan=plan, keepalive_s=60.0)
    session.start()
    assert await session.wait_ready(5.0)
    plan["dead"] = True
    session.notice_failure((-10002, "IPC recv failed"))
    assert await until(lambda: not session.ready, 2.0)
    await session.stop()


async def test_no_login_is_attempted_inside_a_maintenance_window(tmp_path: Path) -> None:
    plan: dict[str, Any] = {}
    now = datetime.now(UTC)
    start = time(now.hour, now.minute)
    window = MaintenanceWindow(start, time((now.hour + 1) % 24, now.minute))
    session = make_session(tmp_path, fail=0, plan=plan, maintenance=(window,))
    session.start()
    assert await until(lambda: session.state is ConnectionState.MAINTENANCE)
    assert not await session.wait_ready(0.3)
    assert plan.get("logins", 0) == 0
    session.options.replace(session.options.current.with_changes(maintenance=()))
    await session.stop()


async def test_the_password_reaches_the_terminal_but_never_the_audit(tmp_path: Path) -> None:
    plan: dict[str, Any] = {}
    session = make_session(tmp_path, fail=0, plan=plan)
    session.start()
    assert await session.wait_ready(5.0)
    await session.stop()
    assert plan["passwords"] == ["s3cret"]
    spooled = b"".join((tmp_path / "spool").glob("seg-*.jsonl").__next__().read_bytes().splitlines())
    assert b"s3cret" not in spooled and b"initialize" in spooled


class PickyTerminal(FakeTerminal):
    """Accepts only the current password of ``plan['password']``, as a broker would."""

    def __init__(self, broker: FakeBroker, plan: dict[str, Any]) -> None:
        super().__init__(broker)
        self.plan = plan

    async def initialize(self, *a: Any, **kw: Any) -> bool:
        self.plan["tries"] = self.plan.get("tries", 0) + 1
        if kw.get("password") != self.plan["password"]:
            self._error = (-6, "Terminal: Authorization failed")
            return False
        return True


async def test_a_refused_password_is_read_again_and_tried_at_once(tmp_path: Path) -> None:
    from mtrobot.connector.credentials import Credentials

    plan: dict[str, Any] = {"password": "new-one"}

    async def refresh() -> Credentials:
        return Credentials(SecretStr("new-one"), login=77, server="Sim-Demo")

    options = OptionsHolder(ConnectorOptions(reconnect_backoff=Backoff(5.0, 10.0)))  # a backoff would show
    link = BrokerLink(None, AuditTrail("s1", tmp_path / "spool", {}), 2.0)
    limiter = LoginRateLimiter(tmp_path / "run", "Sim-Demo", LoginRate(1000, 1000))
    broker = FakeBroker()
    session = Session("s1", link, options, lambda: PickyTerminal(broker, plan), SecretStr("old-one"), limiter,
                      refresh=refresh)  # fmt: skip
    session.start()
    assert await session.wait_ready(3.0)
    await session.stop()
    assert plan["tries"] == 2 and session.backoff_delays == []
    assert options.current.login == 77 and options.current.server == "Sim-Demo"


async def test_the_breaker_opens_after_repeated_failed_logins_holds_then_half_opens_and_closes(
    tmp_path: Path,
) -> None:
    from mtrobot.connector.breaker import BreakerPolicy, BreakerState

    plan: dict[str, Any] = {}
    session = make_session(
        tmp_path, fail=4, plan=plan, breaker=BreakerPolicy(threshold=3, open_s=0.3, cap_s=2)
    )
    session.start()
    assert await until(lambda: session.breaker.state is BreakerState.OPEN)
    assert plan["logins"] == 3 and "failed 3 times in a row" in session.breaker.describe()
    assert "orders are held" in session.breaker.describe() and session.state is ConnectionState.BACKOFF
    await asyncio.sleep(0.15)
    assert plan["logins"] == 3, "no login while the breaker is open"
    # the half-open trial fails (login 4): open again for twice as long; the next trial (login 5) connects
    assert await session.wait_ready(5.0)
    await session.stop()
    assert plan["logins"] == 5 and session.breaker.state is BreakerState.CLOSED
    assert session.backoff_delays[3] >= 0.3 * 2 - 0.05  # the second opening waited the doubled interval


def test_the_breaker_policy_and_its_words() -> None:
    from mtrobot.connector.breaker import BreakerPolicy, BreakerState, CircuitBreaker

    now = [0.0]
    breaker = CircuitBreaker(BreakerPolicy(threshold=2, open_s=10, cap_s=15), clock=lambda: now[0])
    assert CircuitBreaker(BreakerPolicy()).open_s == 30 and CircuitBreaker(BreakerPolicy()).cap_s == 60
    breaker.failure("Authorization failed")
    assert breaker.state is BreakerState.CLOSED and breaker.describe() == ""
    breaker.failure("Authorization failed")
    assert breaker.state is BreakerState.OPEN and breaker.wait_s() == 10
    assert "(Authorization failed)" in breaker.describe() and "next try in 10 s" in breaker.describe()
    now[0] = 10.0
    assert breaker.state is BreakerState.HALF_OPEN and breaker.wait_s() == 0
    breaker.failure()
    assert breaker.wait_s() == 15  # doubled, capped
    breaker.success()
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0
