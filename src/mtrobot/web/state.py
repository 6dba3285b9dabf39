"""What the app holds for its lifetime: settings, the database, the vault, the bus. Built by the factory."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mtrobot.robots.catalogue import Catalogue
from mtrobot.settings import Settings
from mtrobot.vault import Vault
from mtrobot.web.agents import AgentBoard
from mtrobot.web.bus import Bus
from mtrobot.web.config import ServerInfo, WebOptions
from mtrobot.web.security_throttle import Network, parse_proxies
from mtrobot.web.servers import known_servers
from mtrobot.web.stream import FeedSubscriber, SendWatchdog, SharedChecks, SnapshotFeed

STREAM_SEND_TIMEOUT_S = 20.0
"""A stream client that reads nothing for this long is disconnected (close 1013)."""


class ProbeGate:
    """Connection tests spawn processes: one at a time per trader, a few at a time in all."""

    def __init__(self, limit: int = 4) -> None:
        self.limit = limit
        self.running: set[str] = set()

    def enter(self, trader_id: str) -> bool:
        if trader_id in self.running or len(self.running) >= self.limit:
            return False
        self.running.add(trader_id)
        return True

    def leave(self, trader_id: str) -> None:
        self.running.discard(trader_id)


@dataclass
class AppState:
    settings: Settings
    options: WebOptions
    engine: Engine
    sessions: sessionmaker[Session]
    vault: Vault
    bus: Bus
    catalogue: Catalogue = field(default_factory=Catalogue)
    """The robots portfolios may use (built-ins, entry points, the data dir's robots folder)."""
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    probes: ProbeGate = field(default_factory=ProbeGate)
    stream_source: FeedSubscriber = field(init=False)
    stream_checks: SharedChecks = field(default_factory=SharedChecks)
    stream_sends: SendWatchdog = field(default_factory=lambda: SendWatchdog(STREAM_SEND_TIMEOUT_S))
    """Every stream socket's sends, watched by one task (a client that stopped reading is disconnected)."""
    """The live streams' periodic re-checks of their callers, one per credential."""
    agents: AgentBoard = field(default_factory=AgentBoard)
    """The latest heartbeat of every agent (``agent.heartbeat.*``)."""

    def __post_init__(self) -> None:
        self.stream_source = FeedSubscriber(SnapshotFeed(), self.bus.latest_snapshot)

    @property
    def trusted_proxies(self) -> tuple[Network, ...]:
        return parse_proxies(self.options.trusted_proxies)

    def servers(self) -> dict[str, ServerInfo]:
        return known_servers(self.settings, self.options.extra_servers)
