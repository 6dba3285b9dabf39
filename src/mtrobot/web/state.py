"""What the app holds for its lifetime: settings, the database, the vault, the bus. Built by the factory."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mtrobot.settings import Settings
from mtrobot.vault import Vault
from mtrobot.web.bus import Bus
from mtrobot.web.config import ServerInfo, WebOptions
from mtrobot.web.servers import known_servers


@dataclass
class AppState:
    settings: Settings
    options: WebOptions
    engine: Engine
    sessions: sessionmaker[Session]
    vault: Vault
    bus: Bus
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def servers(self) -> dict[str, ServerInfo]:
        return known_servers(self.settings, self.options.extra_servers)
