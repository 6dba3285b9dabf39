"""Configuration schemas, looked up by the first segment of a service name.

``connector.demo`` is validated by the schema registered as ``connector``. The registry starts with the
connector's schema; other parts register theirs with :func:`register_schema` (in their own process), or
through the ``mtrobot.hub_schemas`` entry-point group so that the hub process knows them too. Every schema
forbids unknown fields, bounds its numbers and has a default for every field, so a service can always run
on its safe defaults.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from mtrobot.core.ids import SYMBOL_PATTERN
from mtrobot.logging import get_logger, is_secret_key

log = get_logger(__name__)

ENTRY_POINT_GROUP = "mtrobot.hub_schemas"


class Section(BaseModel):
    """Base of every schema and section: immutable, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


IDENTITY_FIELDS = ("backend", "server", "login", "terminal_path", "portable", "bridge_host", "bridge_port")
"""Which terminal and broker an account's password goes to: from the account's record (the hand-off, or the
stand-alone connector's command line), never from hot-reloadable configuration (DESIGN.md 4)."""


class MT5Connection(Section):
    """How the connector talks to its terminal. Never *which* terminal or broker: ``IDENTITY_FIELDS`` come
    from the account's record and are refused here, so no configuration change can send an account's
    password to another server. The password never lives here either (vault or MT5_PASSWORD)."""

    timeout_seconds: float = Field(default=60.0, ge=1.0, le=600.0)
    keepalive_interval_seconds: float = Field(default=10.0, ge=1.0, le=300.0)

    backend: None = Field(default=None, exclude=True, description="refused: from the account's record")
    server: None = Field(default=None, exclude=True, description="refused: from the account's record")
    login: None = Field(default=None, exclude=True, description="refused: from the account's record")
    terminal_path: None = Field(default=None, exclude=True, description="refused: from the account's record")
    portable: None = Field(default=None, exclude=True, description="refused: from the account's record")
    bridge_host: None = Field(default=None, exclude=True, description="refused: from the account's record")
    bridge_port: None = Field(default=None, exclude=True, description="refused: from the account's record")

    @field_validator(*IDENTITY_FIELDS, mode="before")
    @classmethod
    def _no_identity(cls, value: object) -> None:
        raise ValueError("the account's terminal and broker come from its record, never from the hub")


class OrderSettings(Section):
    validate_before_send: bool = True
    max_retries: int = Field(default=3, ge=0, le=10)
    retry_delay_seconds: float = Field(default=1.0, ge=0.05, le=60.0)
    default_deviation_points: int = Field(default=20, ge=0, le=10_000)
    send_timeout_seconds: float = Field(default=10.0, ge=0.5, le=120.0)


class ErrorHandling(Section):
    auto_reconnect: bool = True
    reconnect_interval_seconds: float = Field(default=5.0, ge=0.1, le=600.0)
    max_backoff_seconds: float = Field(default=300.0, ge=1.0, le=3600.0)
    log_all_communications: bool = True

    @model_validator(mode="after")
    def _cap_not_below_interval(self) -> ErrorHandling:
        if self.max_backoff_seconds < self.reconnect_interval_seconds:
            raise ValueError("max_backoff_seconds must be at least reconnect_interval_seconds")
        return self


class PositionSync(Section):
    sync_interval_minutes: float = Field(default=5.0, ge=0.1, le=1440.0)
    reconcile_on_disconnect: bool = True


class ConnectorConfig(Section):
    """The MT5 connector's configuration (key ``connector.{account}`` in ``central_hub``)."""

    mt5_connection: MT5Connection = MT5Connection()
    order_settings: OrderSettings = OrderSettings()
    error_handling: ErrorHandling = ErrorHandling()
    position_sync: PositionSync = PositionSync()


# --- portfolio.{account} ----------------------------------------------------------------------------------

ROBOT_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
Timeframe = Literal["M1", "M5", "M15", "M30", "H1", "H4", "D1"]
ParamValue = StrictBool | StrictInt | StrictFloat | Annotated[str, Field(max_length=64)]
_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class StrictSection(Section):
    """A section traders write through the API: a wrong JSON type is refused, never coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Sizing(StrictSection):
    """How big each order of a robot is: a fixed volume, or a percentage of equity (docs/robots.md)."""

    mode: Literal["fixed_lots", "equity_percent"] = "fixed_lots"
    lots: float = Field(default=0.01, gt=0, le=100, description="volume of each order (fixed_lots)")
    equity_percent: float = Field(
        default=1.0, gt=0, le=100, description="equity at risk per order (equity_percent)"
    )


class TradingHours(StrictSection):
    """When a robot may open positions, in the trade server's time; closing is always allowed."""

    start: str = Field(default="00:00", pattern=_HHMM)
    end: str = Field(default="23:59", pattern=_HHMM, description="exclusive; before start = overnight")

    @model_validator(mode="after")
    def _not_empty(self) -> TradingHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class Allocation(StrictSection):
    """One robot on one symbol and timeframe, with its parameters and risk."""

    robot: str = Field(pattern=ROBOT_NAME_PATTERN)
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    timeframe: Timeframe = "H1"
    enabled: bool = True
    params: dict[str, ParamValue] = Field(default_factory=dict, max_length=50)
    sizing: Sizing = Sizing()
    max_open_positions: int = Field(default=1, ge=1, le=100, description="this robot's own positions")
    trading_hours: TradingHours | None = None

    @property
    def label(self) -> str:
        return f"{self.robot} {self.symbol} {self.timeframe}"


class AccountRisk(StrictSection):
    """Pre-trade limits and the guards of the whole account (their exact meaning: docs/robots.md)."""

    max_open_positions: int = Field(default=20, ge=1, le=1000, description="open positions on the account")
    max_lots_per_order: float = Field(default=1.0, gt=0, le=1000)
    min_margin_level_percent: float = Field(
        default=200.0, ge=0, le=1_000_000, description="refuse an order that would leave less"
    )
    max_daily_loss_money: float | None = Field(default=None, gt=0, le=1e12)
    max_daily_loss_percent: float | None = Field(default=None, gt=0, le=100)
    max_drawdown_money: float | None = Field(default=None, gt=0, le=1e12)
    max_drawdown_percent: float | None = Field(default=None, gt=0, le=100)
    flatten_on_breach: bool = Field(default=False, description="close every position when a guard fires")


class PortfolioConfig(StrictSection):
    """An account's portfolio (key ``portfolio.{account}`` in ``central_hub``), hot-loaded by its agent.

    Robot names and parameters are checked against the robot catalogue by the robots part
    (``mtrobot.robots.portfolio``) before the web writes a document here; the agent refuses, per
    allocation, whatever still does not fit.
    """

    active: bool = False
    robots: list[Allocation] = Field(default_factory=list, max_length=50)
    risk: AccountRisk = AccountRisk()

    @model_validator(mode="after")
    def _one_allocation_per_robot_symbol_timeframe(self) -> PortfolioConfig:
        seen: set[tuple[str, str, str]] = set()
        for allocation in self.robots:
            key = (allocation.robot, allocation.symbol, allocation.timeframe)
            if key in seen:
                raise ValueError(
                    f"{allocation.label} appears twice: one allocation per robot, symbol, timeframe"
                )
            seen.add(key)
        return self


def secret_fields_of(schema: type[BaseModel], prefix: str = "") -> list[str]:
    """Every field path of ``schema`` (nested models included) whose name looks like a secret."""
    found: list[str] = []
    for name, info in schema.model_fields.items():
        path = f"{prefix}{name}"
        if is_secret_key(name) or (info.alias and is_secret_key(info.alias)):
            found.append(path)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.extend(secret_fields_of(annotation, f"{path}."))
    return found


class SchemaRegistry:
    """Maps the first segment of a service name to the pydantic model its document must satisfy."""

    def __init__(self) -> None:
        self._schemas: dict[str, type[BaseModel]] = {}

    def register(self, prefix: str, schema: type[BaseModel]) -> None:
        """Register ``schema`` for every service named ``prefix`` or ``prefix.*``.

        A schema with a secret-named field is refused: the hub would refuse every document for it.
        """
        if "." in prefix or not prefix:
            raise ValueError(f"schema prefix {prefix!r} must be a single token such as 'connector'")
        secrets = secret_fields_of(schema)
        if secrets:
            raise ValueError(f"schema {schema.__name__} has secret-named fields {secrets}: secrets stay out")
        self._schemas[prefix] = schema

    def schema_for(self, service: str) -> type[BaseModel] | None:
        return self._schemas.get(service.split(".", 1)[0])

    def prefixes(self) -> dict[str, type[BaseModel]]:
        return dict(self._schemas)

    def load_entry_points(self) -> None:
        """Register schemas that installed parts declare in the ``mtrobot.hub_schemas`` group."""
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                schema = ep.load()
                self.register(ep.name, schema)
            except Exception as exc:  # one broken plugin must not take the hub down
                log.error("hub schema entry point refused", name=ep.name, error=str(exc))


def default_registry() -> SchemaRegistry:
    """A registry holding the built-in schemas."""
    registry = SchemaRegistry()
    registry.register("connector", ConnectorConfig)
    registry.register("portfolio", PortfolioConfig)
    return registry


_REGISTRY = default_registry()


def register_schema(prefix: str, schema: type[BaseModel]) -> None:
    """Register ``schema`` in this process's shared registry (see :meth:`SchemaRegistry.register`)."""
    _REGISTRY.register(prefix, schema)


def schema_for(service: str) -> type[BaseModel] | None:
    """The schema registered for ``service``'s first segment in this process, if any."""
    return _REGISTRY.schema_for(service)


def shared_registry() -> SchemaRegistry:
    return _REGISTRY
