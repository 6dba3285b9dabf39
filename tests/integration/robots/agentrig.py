"""Real processes for the agent parity test: ``mtrobot simbroker`` replaying a price file on a held virtual
clock, and ``mtrobot agent --account ID`` started the way the supervisor starts one (the hand-off line on
stdin), plus a listener that records what the agent sends and what the broker answers, from the bus."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from mtrobot.bus import subjects
from mtrobot.core.lifecycle import OrderState
from mtrobot.hub.schemas import PortfolioConfig
from mtrobot.proc import inherited_env, spawn_mtrobot
from mtrobot.robots.slot import decision_ms
from mtrobot.settings import Settings
from mtrobot.sim.admin import SimAdmin
from mtrobot.sim.config import BrokerConfig
from mtrobot.vault import Vault, load_keyring

Order = tuple[int | None, str, str, str]
"""(market time of the decision in ms, action, side, volume): what parity compares."""


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


async def start_simbroker(
    data: Path, config: BrokerConfig, replay: str, start: datetime
) -> tuple[asyncio.subprocess.Process, SimAdmin]:
    """``mtrobot simbroker --replay ... --start ... --speed 0``: the clock moves only when told to."""
    (data / "broker.json").write_text(config.model_dump_json())
    args = ("simbroker", "--data-dir", str(data), "--port", "0", "--config", str(data / "broker.json"))
    args += ("--replay", replay, "--start", start.strftime("%Y-%m-%dT%H:%M:%S"), "--speed", "0")
    process = await spawn_mtrobot(args, env=inherited_env(), log_path=data / "simbroker.log")
    run_file = Settings(data_dir=data).simbroker_file
    try:
        await until(lambda: run_file.exists() or process.returncode is not None, 30, "the simbroker")
    finally:
        assert run_file.exists(), log_tail(data / "simbroker.log")
    return process, SimAdmin.from_run_file(run_file)


def handoff_line(
    platform: Path, account: str, login: int, server: str, password: str, portfolio: PortfolioConfig
) -> bytes:
    """What the supervisor sends an agent (``supervisor.handoff.agent_handoff``): the sealed password and
    its data key only, never the master key."""
    vault = Vault(load_keyring(Settings(data_dir=platform)))
    sealed = vault.seal(account, password)
    data_key = base64.b64encode(vault.unwrap_data_key(sealed)).decode()
    line = {
        "handoff": {"record": sealed.to_dict(), "data_key": data_key},
        "login": login,
        "server": server,
        "backend": "sim",
        "bus": {"creds": None, "inbox_prefix": None},
        "portfolio": portfolio.model_dump(mode="json"),
        "control": {"state": "running", "reason": ""},
    }
    return json.dumps(line).encode() + b"\n"


async def start_agent(data: Path, account: str, nats_url: str, handoff: bytes) -> asyncio.subprocess.Process:
    env = inherited_env() | {"MTROBOT_NATS_URL": nats_url}
    env.pop("MTROBOT_DATA_DIR", None)
    args = ("agent", "--account", account, "--data-dir", str(data))
    return await spawn_mtrobot(args, env=env, log_path=data / "agent.log", stdin=handoff)


@dataclass
class AccountWatch:
    """The account's traffic on the bus: the orders its agent submits, the fills and the order states."""

    account: str
    orders: list[dict[str, Any]] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    position_side: dict[int, str] = field(default_factory=dict)
    robots: list[dict[str, Any]] = field(default_factory=list)
    snapshots: int = 0
    beats: list[float] = field(default_factory=list)
    """When each of the agent's heartbeats arrived (monotonic seconds)."""
    _subs: list[Any] = field(default_factory=list)

    async def listen(self, nc: Client) -> AccountWatch:
        for subject, handler in (
            (subjects.orders_submitted_filter(self.account), self._on_order),
            (subjects.broker_order_of(self.account), self._on_update),
            (subjects.broker_fill_of(self.account), self._on_fill),
            (subjects.snapshot(self.account), self._on_snapshot),
            (subjects.agent_heartbeat(self.account), self._on_beat),
        ):
            self._subs.append(await nc.subscribe(subject, cb=handler))  # type: ignore[attr-defined]
        return self

    async def close(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()

    async def _on_order(self, msg: Msg) -> None:
        self.orders.append(json.loads(msg.data))

    async def _on_update(self, msg: Msg) -> None:
        update = json.loads(msg.data)
        self.states[update["order_id"]] = update["state"]

    async def _on_fill(self, msg: Msg) -> None:
        fill = json.loads(msg.data)
        opening = {o["order_id"] for o in self.orders if o.get("action", "open") == "open"}
        if fill["order_id"] in opening:
            self.position_side[int(fill["position"])] = fill["side"]

    async def _on_snapshot(self, msg: Msg) -> None:
        self.snapshots += 1
        self.robots = json.loads(msg.data).get("robots", [])

    async def _on_beat(self, msg: Msg) -> None:
        self.beats.append(time.monotonic())

    def settled(self) -> bool:
        return all(OrderState(self.states.get(o["order_id"], "received")).is_terminal for o in self.orders)

    def decided_by(self, moment: int) -> int:
        return sum(1 for o in self.orders if (decision_ms(o["order_id"]) or 0) <= moment)

    def sent(self) -> list[Order]:
        """The submitted orders as parity compares them; a close's side is that of the position it closes."""
        rows = []
        for o in self.orders:
            action = o.get("action", "open")
            side = (
                o.get("order_type") or "" if action == "open" else self.position_side.get(o["position"], "?")
            )
            volume = "" if o.get("volume") is None else f"{o['volume']:g}"
            rows.append((decision_ms(o["order_id"]), action, side, volume))
        return rows


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
