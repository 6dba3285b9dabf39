"""Quarantine: the supervisor stops an agent that misbehaves from trading, and keeps it from looping.

An agent is quarantined when it

- goes over its memory limit (the kernel stopped it: :meth:`Quarantine.exited` reads the runtime's word),
- keeps the CPU busy for ``cpu_window_s`` without a pause (what its threads ran and waited to run, from
  the kernel, where the runtime measures it; else its whole CPU share in every heartbeat of the window),
- stops heartbeating for ``silence_s`` while its process is alive,
- floods orders (more than ``max_orders_per_min`` in its heartbeat's one-minute count), or
- crashes ``max_crashes`` times within ``crash_window_s`` (a restart loop).

Quarantined means: the account's ``agent_state`` becomes ``quarantined`` in the database with a reason in
plain words (the web shows it to the trader and the operator), the running agent is told
``{"cmd": "quarantine", "reason": ...}`` on ``agent.control.{account}`` (its trading gate closes: no new
opens; open positions stay, closes and flatten still work, its snapshots say ``quarantined``), it gets the
least CPU weight (whatever it still does goes after the other agents), and an agent that used too much CPU
gets a smaller CPU share. An agent that stopped answering is killed; like one the
kernel stopped, it is started once more *in quarantine* (gate closed, robots paused), so that the trader can
still flatten. If a quarantined agent dies again it is held: nothing starts it until a person resumes the
account (``resume`` sets ``agent_state`` back to ``active``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mtrobot.bus import subjects
from mtrobot.logging import get_logger
from mtrobot.settings import Settings

from .handoff import AgentRecord
from .runtime.base import AgentLimits

log = get_logger(__name__)

QUARANTINED = "quarantined"
HEARTBEATS = "agent.heartbeat.*"
"""Every agent's heartbeat (DESIGN.md 3.2); the last token names the account."""
SUBMITTED = "orders.submitted.>"
"""Every order sent to any account (``orders.submitted.{account}.{symbol}``): counted as it arrives, not
as the agent gets through it, so a flood shows before the agent has drowned in it."""


@dataclass(frozen=True)
class QuarantinePolicy:
    silence_s: float = 20.0
    """Four missed heartbeats (every 5 s)."""
    start_grace_s: float = 30.0
    """A new agent may take this long before its first heartbeat."""
    cpu_window_s: float = 30.0
    busy_cores: float = 0.9
    """Quarantined when its threads wanted at least this many cores (ran or waited to run) over the whole
    window: a thread that never sleeps. Measured as demand, not usage, so that a busy host (where a busy
    loop gets less than its share) does not hide it and an idle one does not flatter it."""
    max_orders_per_min: float = 600.0
    max_crashes: int = 5
    crash_window_s: float = 300.0
    quarantined_cpu_share: float = 0.05
    """What a quarantined CPU hog may still use: enough to answer control and flatten."""
    demote_window_s: float = 2.0
    """An agent whose threads wanted ``busy_cores`` over this short window (once it said it runs) gets the
    least CPU weight at once (its quota stays): until it calms down, the other agents go first whenever
    they want a core. The quarantine itself waits for the whole ``cpu_window_s``."""


@dataclass(frozen=True)
class Verdict:
    account: str
    reason: str
    kill: bool = False
    """The agent no longer answers: stop it (it is started again in quarantine, once)."""


@dataclass
class _Watch:
    started: float
    last_beat: float | None = None
    settled: float | None = None
    """When its heartbeat first said anything but ``starting``."""
    beat: dict[str, Any] = field(default_factory=dict)
    cpu: deque[tuple[float, float]] = field(default_factory=deque)
    """(monotonic time, CPU seconds used so far) samples over the CPU window."""
    beats_cpu: deque[tuple[float, float]] = field(default_factory=deque)
    """(monotonic time, cpu_pct) from the heartbeats, where no cgroup measures it."""
    recent: deque[tuple[float, float]] = field(default_factory=deque)
    """(monotonic time, CPU seconds wanted so far) over the short demotion window."""
    demoted: bool = False
    """Its CPU weight is the least (:meth:`Quarantine._demote`)."""


def _mib(isolation: Mapping[str, str]) -> str:
    return isolation.get("memory", "")


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class Quarantine:
    """The supervisor's quarantine: watches heartbeats and usage, decides, records and tells the agent."""

    def __init__(
        self,
        settings: Settings,
        limits: AgentLimits,
        policy: QuarantinePolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.limits = limits
        self.cpu_share = limits.cpu_share
        self.policy = policy or QuarantinePolicy()
        self.clock = clock
        self.reasons: dict[str, str] = {}
        """Accounts quarantined now (in the database too), with their reason."""
        self.held: set[str] = set()
        """Quarantined accounts whose agent is not started again until a person resumes them."""
        self._once: set[str] = set()
        """Quarantined accounts whose agent is started once more in quarantine (killed or over memory)."""
        self._watch: dict[str, _Watch] = {}
        self._crashes: dict[str, deque[float]] = {}
        self._nc: Any = None
        self._own: Any = None
        self._subs: list[Any] = []
        self._orders: dict[str, deque[float]] = {}
        self.alarm: Callable[[], None] | None = None
        """Called when the supervisor should run a round now: an agent went over the order rate (judged at
        once), or one finished starting (the next one may start)."""
        self._imposed_at: dict[str, float] = {}

    # -- what the supervisor tells it ----------------------------------------------------------------

    async def start(self, nc: Any) -> None:
        """Listen to every agent's heartbeat (``nc`` None: no bus, heartbeats are not watched)."""
        self._nc = nc
        if nc is not None:
            self._subs = [
                await nc.subscribe(HEARTBEATS, cb=self._on_heartbeat),
                await nc.subscribe(SUBMITTED, cb=self._on_order),
            ]

    async def connect(self, url: str | None) -> None:
        """:meth:`start` on a connection of its own (closed by :meth:`close`); never raises."""
        if url is None:
            return
        from mtrobot.bus.connect import connect
        from mtrobot.bus.identity import service_creds, service_inbox

        try:
            self._own = await connect(
                url,
                "supervisor-quarantine",
                max_reconnect_attempts=-1,
                creds=service_creds(self.settings, "supervisor"),
                inbox_prefix=service_inbox("supervisor"),
            )
            await self.start(self._own)
        except Exception as exc:  # without the bus only exits are judged; the next round does not retry
            log.warning("quarantine does not watch heartbeats", error=repr(exc))

    async def close(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs = []
        if self._own is not None:
            with contextlib.suppress(Exception):
                await self._own.close()
            self._own = None

    def known(self, account: str, agent_state: str, reason: str, read_at: float | None = None) -> bool:
        """The database's word at each round (read at ``read_at``): a person's resume clears the quarantine
        and its history. True when that releases a held agent (the supervisor starts it again). A read
        older than the quarantine itself says nothing about it."""
        if agent_state == QUARANTINED:
            self.reasons.setdefault(account, reason)
            return False
        if account not in self.reasons:
            return False
        if read_at is not None and read_at <= self._imposed_at.get(account, float("-inf")):
            return False
        log.info("quarantine lifted by a person", account=account)
        self.reasons.pop(account)
        self._crashes.pop(account, None)
        self._once.discard(account)
        was_held = account in self.held
        self.held.discard(account)
        return was_held

    def overlay(self, record: AgentRecord) -> AgentRecord:
        """``record`` as it stands after a quarantine the database read may not show yet."""
        reason = self.reasons.get(record.account)
        if reason is None or record.agent_state == QUARANTINED:
            return record
        return dataclasses.replace(record, agent_state=QUARANTINED, agent_reason=reason)

    def started(self, account: str, process: Any = None) -> None:
        """A new agent process runs; one started in quarantine has the least CPU weight from the start."""
        watch = self._watch[account] = _Watch(started=self.clock())
        demote = getattr(process, "demote_cpu", None)
        if account in self.reasons and callable(demote):
            watch.demoted = bool(demote(True))

    def settled(self, account: str) -> bool:
        """Whether the agent's heartbeat said it runs (or paused, or quarantined): no longer starting."""
        watch = self._watch.get(account)
        return watch is None or watch.settled is not None

    def forget(self, account: str) -> None:
        self._watch.pop(account, None)

    def exited(self, account: str, code: int, breach: str | None) -> tuple[str | None, bool]:
        """An agent ended on its own with ``code``: (a new quarantine reason or None, hold it?).

        Held means: not started again until a person resumes the account."""
        self._watch.pop(account, None)
        now = self.clock()
        crashes = self._crashes.setdefault(account, deque())
        crashes.append(now)
        while crashes and crashes[0] < now - self.policy.crash_window_s:
            crashes.popleft()
        if account in self._once:
            self._once.discard(account)
            return None, False  # quarantined and stopped for it: started once more, gate closed
        if account in self.reasons:
            self.held.add(account)
            return None, True  # it died again while quarantined: the same loop, wait for a person
        if breach is not None:
            return breach, False  # imposed by the caller; the next start is in quarantine, the last one
        if len(crashes) >= self.policy.max_crashes:
            minutes = self.policy.crash_window_s / 60
            self.held.add(account)
            return f"it crashed {len(crashes)} times in {minutes:g} minutes (last exit code {code})", True
        return None, False

    # -- the watch -------------------------------------------------------------------------------------

    async def _on_heartbeat(self, msg: Any) -> None:
        account = msg.subject.rsplit(".", 1)[-1]  # the subject names the sender, not the payload
        watch = self._watch.get(account)
        if watch is None:
            return
        try:
            beat = json.loads(msg.data)
        except ValueError:
            return
        if not isinstance(beat, dict):
            return
        now = self.clock()
        watch.last_beat, watch.beat = now, beat
        if watch.settled is None and beat.get("state") not in (None, "starting"):
            watch.settled = now
            if self.alarm is not None:
                self.alarm()
        cpu = _number(beat.get("cpu_pct"))
        if cpu is not None:
            watch.beats_cpu.append((now, cpu))

    async def _on_order(self, msg: Any) -> None:
        parts = msg.subject.split(".")
        if len(parts) < 4 or parts[2] not in self._watch:
            return
        now = self.clock()
        seen = self._orders.setdefault(parts[2], deque())
        seen.append(now)
        while seen and (seen[0] < now - 60.0 or len(seen) > self.policy.max_orders_per_min + 1):
            seen.popleft()
        if len(seen) > self.policy.max_orders_per_min and parts[2] not in self.reasons and self.alarm:
            self.alarm()  # judge now: until the next round a flood fills on the shared broker and bus

    def orders_per_min(self, account: str) -> float:
        seen = self._orders.get(account)
        now = self.clock()
        while seen and seen[0] < now - 60.0:
            seen.popleft()
        return float(len(seen)) if seen else 0.0

    def check(self, usage: Mapping[str, Any]) -> list[Verdict]:
        """What to quarantine now, of the running agents; ``usage`` maps each to its :class:`AgentProcess`."""
        now = self.clock()
        verdicts = []
        for account, process in usage.items():
            watch = self._watch.get(account)
            if watch is None:
                continue
            verdict = self._offence(account, watch, process, now)
            if verdict is not None:
                verdicts.append(verdict)
                if verdict.kill:
                    self._watch.pop(account, None)  # judged: nothing more until it starts again
                else:
                    watch.cpu.clear()
                    watch.beats_cpu.clear()
        return verdicts

    def _offence(self, account: str, watch: _Watch, process: Any, now: float) -> Verdict | None:
        p = self.policy
        seen = watch.last_beat if watch.last_beat is not None else watch.started
        limit = p.silence_s if watch.last_beat is not None else p.start_grace_s
        if now - seen > limit:
            return Verdict(account, f"it stopped answering (no heartbeat for {now - seen:.0f} s)", kill=True)
        if account in self.reasons:
            return None  # already quarantined: its gate is closed, its CPU share cut
        rss = _number(watch.beat.get("rss_mb"))
        if rss is not None and rss > self.limits.memory_mb and "cgroup" not in _mib(process.isolation):
            # No cgroup stops it at the limit (rlimits only): the supervisor does, from its heartbeat.
            return Verdict(
                account,
                f"it used {rss:.0f} MiB of memory (the limit is {self.limits.memory_mb} MiB)",
                kill=True,
            )
        rate = max(_number(watch.beat.get("orders_per_min")) or 0.0, self.orders_per_min(account))
        if rate > p.max_orders_per_min:
            return Verdict(
                account, f"more than {p.max_orders_per_min:.0f} orders in one minute (an order flood)"
            )
        wanted = self._cpu_wanted(account, watch, process, now)
        if wanted is not None and wanted >= p.busy_cores:
            return Verdict(
                account,
                f"it kept the CPU busy without a pause for {p.cpu_window_s:.0f} s (a busy loop?); "
                f"its CPU share is cut to {p.quarantined_cpu_share:g} of a core",
            )
        return None

    def _cpu_wanted(self, account: str, watch: _Watch, process: Any, now: float) -> float | None:
        """Cores wanted on average over the last full CPU window, or None before a window is full. From the
        runtime's measure where it has one; else the agent's own heartbeat (usage, the best it has)."""
        window = self.policy.cpu_window_s
        if watch.settled is None:
            return None  # starting (imports, login) wants the CPU too: judged once it says it runs
        reading = getattr(process, "usage", None)
        seconds = getattr(reading(), "cpu_demand_seconds", None) if callable(reading) else None
        if seconds is not None:
            self._demote(account, watch, process, now, float(seconds))
            watch.cpu.append((now, float(seconds)))
            while len(watch.cpu) > 2 and watch.cpu[1][0] <= now - window:
                watch.cpu.popleft()
            (t0, c0), (t1, c1) = watch.cpu[0], watch.cpu[-1]
            return (c1 - c0) / (t1 - t0) if t1 - t0 >= window else None
        while watch.beats_cpu and watch.beats_cpu[0][0] < now - window:
            watch.beats_cpu.popleft()
        beats = list(watch.beats_cpu)
        if not beats or now - watch.started < window or len(beats) < 2:
            return None
        # Every beat of the window near its whole share (usage: all a heartbeat knows), not one of them.
        at_share = min(pct for _, pct in beats) / 100.0 >= 0.9 * self.cpu_share
        return self.policy.busy_cores if at_share else 0.0

    def _demote(self, account: str, watch: _Watch, process: Any, now: float, seconds: float) -> None:
        """Least CPU weight for an agent that wanted ``busy_cores`` over the last ``demote_window_s``, its
        normal weight back once it wants less. Acts within a round or two, long before a quarantine. Not
        while it starts: demoting starts slowed every start on a busy host (tried, docs/performance.md)."""
        demote = getattr(process, "demote_cpu", None)
        if not callable(demote):
            return
        recent = watch.recent
        recent.append((now, seconds))
        since = now - self.policy.demote_window_s
        while len(recent) > 2 and recent[1][0] <= since:
            recent.popleft()
        (t0, c0), (t1, c1) = recent[0], recent[-1]
        if t0 > since or t1 <= t0:
            return  # not a whole window yet
        busy = (c1 - c0) / (t1 - t0) >= self.policy.busy_cores
        if busy != watch.demoted and demote(busy):
            watch.demoted = busy
            log.info("agent CPU weight", account=account, demoted=busy)

    # -- imposing it ---------------------------------------------------------------------------------

    async def impose(self, account: str, reason: str, process: Any = None, *, kill: bool = False) -> None:
        """Record the quarantine and its reason, tell the agent, and cut a CPU hog's share. ``kill``: the
        agent does not answer; it is killed (by the caller) and started once more in quarantine."""
        if kill and account not in self.reasons:
            self._once.add(account)
        self.reasons[account] = reason
        self._imposed_at[account] = self.clock()
        log.warning("agent quarantined", account=account, reason=reason)
        await asyncio.to_thread(record_quarantine, self.settings, account, reason)
        restrict = getattr(process, "restrict_cpu", None)
        if callable(restrict) and "busy loop" in reason:
            restrict(self.policy.quarantined_cpu_share)
        self._demote_quarantined(account, process)
        if self._nc is not None and process is not None:
            request = json.dumps({"cmd": "quarantine", "reason": reason}).encode()
            try:
                await self._nc.request(subjects.agent_control(account), request, timeout=3.0)
            except Exception as exc:  # it does not answer: the database and its next start carry it
                log.warning("quarantine not acknowledged by the agent", account=account, error=repr(exc))

    def _demote_quarantined(self, account: str, process: Any) -> None:
        """A quarantined agent gets the least CPU weight, whatever its offence: what it still does (refusing
        the rest of a flood, a journal write and three bus messages each; answering control) goes after
        every other agent's orders. Its quota stays (a flatten still runs at once on an idle core)."""
        demote = getattr(process, "demote_cpu", None)
        watch = self._watch.get(account)
        if callable(demote) and (watch is None or not watch.demoted) and demote(True) and watch is not None:
            watch.demoted = True


def record_quarantine(settings: Settings, account: str, reason: str) -> None:
    """``agent_state = quarantined`` with the reason, for the web and the next start (blocking)."""
    from mtrobot.storage import accounts as account_repo
    from mtrobot.storage.db import one_off_session

    with one_off_session(settings.resolved_database_url) as db:
        account_repo.set_agent_state(db, account, QUARANTINED, reason)
        db.commit()
