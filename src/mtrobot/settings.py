"""Typed settings from the environment (prefix ``MTROBOT_``, DESIGN.md 3.4).

Every unset setting falls back to the embedded default under the data dir, so ``mtrobot up`` on a fresh
machine needs none of them. Settings are built once in ``main()`` and passed down; there is no global.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path(".mtrobot")
SIMBROKER_RUN_FILE = "simbroker.json"
DEFAULT_ORDERS_PER_MIN = 600.0
"""An account's intake limit, sustained: the rate at which the supervisor quarantines an order flood."""
DEFAULT_ORDER_BURST = 20


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MTROBOT_", extra="ignore")

    data_dir: Path = Field(default=DEFAULT_DATA_DIR, description="where every embedded part keeps its files")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data dir")
    nats_url: str | None = Field(default=None, description="external NATS; default: an embedded server")
    nats_creds: Path | None = Field(
        default=None, description="credentials (.creds file) for the external NATS; default: none"
    )
    clickhouse_url: str | None = Field(
        default=None, description="ClickHouse server; default chDB in data dir"
    )
    kafka_bootstrap: str | None = Field(
        default=None, description="Kafka mirror of the audit log; default off"
    )
    master_key: SecretStr | None = Field(default=None, description="vault master key; default a key file")
    orders_per_min: float = Field(
        default=DEFAULT_ORDERS_PER_MIN,
        ge=0,
        allow_inf_nan=False,  # "inf" would be no limit in disguise: 0 says that
        description="orders a minute an account's intake takes (closes never limited); 0: no limit",
    )
    order_burst: int = Field(
        default=DEFAULT_ORDER_BURST, ge=1, description="orders an account's intake takes at once"
    )
    # Host-wide, shared by every agent through one token bucket per broker server (connector/ratelimit.py).
    # Not an account's identity, so the environment may set it; 2/s with a burst of 4 is gentle on any broker.
    login_rate_per_s: float = Field(
        default=2.0, gt=0, le=1000, description="logins a second to one broker server, host-wide"
    )
    login_burst: float = Field(
        default=4.0, ge=1, le=10_000, description="logins one broker server may see at once"
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator(
        "database_url", "nats_url", "nats_creds", "clickhouse_url", "kafka_bootstrap", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'mtrobot.db'}"

    @property
    def nats_store_dir(self) -> Path:
        return self.data_dir / "nats"

    @property
    def chdb_dir(self) -> Path:
        return self.data_dir / "chdb"

    @property
    def run_dir(self) -> Path:
        """Where running parts leave their discovery files (the embedded NATS URL, pids)."""
        return self.data_dir / "run"

    @property
    def simbroker_file(self) -> Path:
        """Where a running ``mtrobot simbroker`` announces its address, servers and admin token."""
        return self.run_dir / SIMBROKER_RUN_FILE

    @property
    def nats_url_file(self) -> Path:
        return self.run_dir / "nats.url"

    def discover_nats_url(self) -> str | None:
        """The configured bus, else the one a running ``mtrobot up`` on this data dir announced."""
        if self.nats_url:
            return self.nats_url
        path = self.nats_url_file
        return path.read_text().strip() if path.exists() else None

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.run_dir):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
