"""Configuration of the simulated broker: trade servers, their symbols, sessions and policies.

Plain pydantic models, so a JSON config file is validated with errors that name the field. The default
configuration (:func:`default_config`) has two brokers that differ where real brokers differ: a hedging demo
server with instant execution and a netting live server with market execution, commissions and slippage.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mtrobot.broker import constants as mt5


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SymbolSpec(Frozen):
    """What the broker publishes about one symbol, plus the parameters of its synthetic price model."""

    name: str = Field(pattern=r"^[A-Za-z0-9._#+-]{1,32}$")
    description: str = ""
    path: str = ""
    currency_base: str
    currency_profit: str
    currency_margin: str
    digits: int = Field(ge=0, le=8)
    contract_size: float = Field(gt=0)
    calc_mode: int = mt5.SYMBOL_CALC_MODE_FOREX
    margin_rate: float = Field(default=1.0, gt=0, description="multiplier of the calc-mode margin formula")
    trade_mode: int = mt5.SYMBOL_TRADE_MODE_FULL
    execution: int = mt5.SYMBOL_TRADE_EXECUTION_INSTANT
    filling_mode: int = mt5.SYMBOL_FILLING_FOK | mt5.SYMBOL_FILLING_IOC
    expiration_mode: int = 15
    order_mode: int = 127
    order_gtc_mode: int = mt5.SYMBOL_ORDERS_GTC
    stops_level: int = Field(default=0, ge=0, description="points")
    freeze_level: int = Field(default=0, ge=0, description="points")
    volume_min: float = Field(default=0.01, gt=0)
    volume_max: float = Field(default=100.0, gt=0)
    volume_step: float = Field(default=0.01, gt=0)
    volume_limit: float = Field(default=0.0, ge=0)
    margin_hedged: float | None = Field(default=None, description="default: the contract size")
    swap_long: float = 0.0
    swap_short: float = 0.0
    commission_per_lot: float = Field(default=0.0, ge=0, description="account currency, per side")
    liquidity_lots: float = Field(default=50.0, gt=0, description="volume available per quote")
    selected: bool = Field(default=True, description="in Market Watch after login")
    weekend_trading: bool = Field(default=False, description="trades seven days a week (crypto CFDs)")
    # synthetic price model
    start_price: float = Field(gt=0)
    spread_points: int = Field(default=10, ge=0)
    volatility: float = Field(default=0.00006, ge=0, description="stdev of log-return per second")

    @property
    def point(self) -> float:
        return float(10.0**-self.digits)

    @model_validator(mode="after")
    def _volumes_consistent(self) -> SymbolSpec:
        if self.volume_min > self.volume_max:
            raise ValueError("volume_min must not exceed volume_max")
        return self


class ServerConfig(Frozen):
    """One named trade server of a broker company."""

    name: str = Field(pattern=r"^[A-Za-z0-9._ -]{1,64}$")
    company: str
    timezone: str = Field(default="fx", description="'fx' = GMT+2/+3 following US DST, or '+02:00'")
    margin_mode: int = mt5.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
    trade_mode: int = mt5.ACCOUNT_TRADE_MODE_DEMO
    maintenance_start: str = Field(default="00:00", pattern=r"^\d\d:\d\d$", description="server time")
    maintenance_minutes: int = Field(default=5, ge=0, le=24 * 60)
    weekend_close: str = Field(default="23:55", pattern=r"^\d\d:\d\d$", description="Friday, server time")
    weekend_open: str = Field(default="00:00", pattern=r"^\d\d:\d\d$", description="Monday, server time")
    margin_so_mode: int = mt5.ACCOUNT_STOPOUT_MODE_PERCENT
    margin_call: float = 100.0
    margin_stopout: float = 50.0
    margin_call_blocks_new: bool = Field(
        default=False, description="refuse new exposure that leaves the margin level at/below margin_call"
    )
    limit_orders: int = Field(default=200, ge=0)
    limit_positions: int = Field(default=0, ge=0, description="0 = unlimited")
    fifo_close: bool = False
    hedge_prohibited: bool = False
    requote_both_ways: bool = False
    sltp_on_market_open: bool = Field(
        default=True, description="market execution accepts SL/TP with the opening deal (some brokers: 10016)"
    )
    slippage_points: int = Field(default=0, ge=0, description="max adverse slippage under market execution")
    comment_length: int = Field(default=16, ge=0, le=31, description="characters the server keeps")
    strict_comments: bool = Field(
        # Strict by default: code proven here must pass the strictest terminal builds too.
        default=True,
        description="refuse comments with characters other than letters, digits, space, _ and -",
    )
    stops_strict: bool = Field(default=True, description="stops level compared with > rather than >=")
    inactivity_timeout_s: float = Field(default=30.0, gt=0)
    max_requests_per_second: int = Field(default=100, ge=0, description="per session; 0 = unlimited")
    login_base: int = Field(default=5_000_000, ge=1)
    tick_interval_ms: int = Field(default=1000, ge=10)
    symbols: tuple[SymbolSpec, ...]

    def symbol(self, name: str) -> SymbolSpec | None:
        return next((s for s in self.symbols if s.name == name), None)


class BrokerConfig(Frozen):
    seed: int = 42
    servers: tuple[ServerConfig, ...]
    history_minutes: int = Field(default=20_000, ge=0, description="M1 bars of history before start")
    history_days: int = Field(
        default=0,
        ge=0,
        le=3660,
        description="days of deep history (bars on every timeframe and ticks, see sim.deep_history); "
        "0 = only history_minutes of M1 bars",
    )
    correlated_prices: bool = Field(
        default=False,
        description="live prices of symbols that share a currency move together (currency factors)",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> BrokerConfig:
        names = [s.name for s in self.servers]
        if len(set(names)) != len(names):
            raise ValueError("servers: names must be unique")
        return self


ExecutionName = Literal["instant", "market"]
DEFAULT_HISTORY_DAYS = 5 * 366
"""Bars and ticks of the default brokers reach this far back (a script's copy_rates_from for 2022 finds
them until 2027)."""


def default_symbols(execution: ExecutionName = "instant", *, live: bool = False) -> tuple[SymbolSpec, ...]:
    """A retail broker's list: FX majors and common crosses, gold and silver, indices and crypto, with
    typical retail specifications (the first eight as they always were; the rest added behind them, so
    every earlier symbol keeps its prices)."""
    exe = mt5.SYMBOL_TRADE_EXECUTION_MARKET if execution == "market" else mt5.SYMBOL_TRADE_EXECUTION_INSTANT
    filling = (
        mt5.SYMBOL_FILLING_IOC if execution == "market" else mt5.SYMBOL_FILLING_FOK | mt5.SYMBOL_FILLING_IOC
    )
    commission = 3.5 if live else 0.0
    fx = dict(
        contract_size=100_000.0,
        execution=exe,
        filling_mode=filling,
        commission_per_lot=commission,
        path="Forex\\Majors",
    )

    def cfd(name: str, description: str, path: str, currency: str, **values: object) -> SymbolSpec:
        return SymbolSpec.model_validate(
            dict(
                name=name,
                description=description,
                path=path,
                currency_base=currency,
                currency_profit=currency,
                currency_margin=currency,
                execution=exe,
                filling_mode=filling,
                selected=False,
            )
            | values
        )

    def pair(name: str, price: float, digits: int, spread: int, vol: float, **extra: object) -> SymbolSpec:
        base, quote = name[:3], name[3:]
        return SymbolSpec.model_validate(
            fx
            | dict(
                name=name,
                description=f"{base} vs {quote}",
                currency_base=base,
                currency_profit=quote,
                currency_margin=base,
                digits=digits,
                start_price=price,
                spread_points=spread,
                volatility=vol,
            )
            | extra
        )

    return (
        pair("EURUSD", 1.08500, 5, 8, 0.00004, swap_long=-7.2, swap_short=2.1),
        pair("GBPUSD", 1.27000, 5, 12, 0.00005, swap_long=-4.1, swap_short=-1.3),
        pair("USDJPY", 150.000, 3, 10, 0.00004, swap_long=12.5, swap_short=-25.7),
        pair("USDCHF", 0.88000, 5, 14, 0.00004, swap_long=5.6, swap_short=-13.4),
        pair("AUDUSD", 0.66000, 5, 12, 0.00005, selected=False, swap_long=-3.3, swap_short=-0.9),
        SymbolSpec(
            name="XAUUSD",
            description="Gold vs US Dollar",
            path="Metals",
            currency_base="XAU",
            currency_profit="USD",
            currency_margin="USD",
            digits=2,
            contract_size=100.0,
            calc_mode=mt5.SYMBOL_CALC_MODE_CFDLEVERAGE,
            execution=exe,
            filling_mode=filling,
            commission_per_lot=commission,
            volume_max=50.0,
            stops_level=20,
            freeze_level=5,
            liquidity_lots=10.0,
            start_price=2350.00,
            spread_points=25,
            volatility=0.00007,
        ),
        SymbolSpec(
            name="US500",
            description="US 500 Index CFD",
            path="Indices",
            currency_base="USD",
            currency_profit="USD",
            currency_margin="USD",
            digits=2,
            contract_size=1.0,
            calc_mode=mt5.SYMBOL_CALC_MODE_CFD,
            margin_rate=0.05,
            execution=exe,
            filling_mode=filling,
            volume_min=0.1,
            volume_step=0.1,
            volume_max=500.0,
            stops_level=50,
            liquidity_lots=200.0,
            start_price=5200.00,
            spread_points=50,
            volatility=0.00006,
            selected=False,
        ),
        SymbolSpec(
            name="BTCUSD",
            description="Bitcoin vs US Dollar (trades at weekends)",
            path="Crypto",
            currency_base="BTC",
            currency_profit="USD",
            currency_margin="USD",
            digits=2,
            contract_size=1.0,
            calc_mode=mt5.SYMBOL_CALC_MODE_CFD,
            margin_rate=0.5,
            execution=exe,
            filling_mode=filling,
            volume_min=0.01,
            volume_step=0.01,
            volume_max=20.0,
            liquidity_lots=5.0,
            start_price=65000.00,
            spread_points=3000,
            volatility=0.0002,
            weekend_trading=True,
            selected=False,
        ),
        pair("USDCAD", 1.36000, 5, 14, 0.00004, swap_long=1.2, swap_short=-6.8),
        pair("NZDUSD", 0.61000, 5, 15, 0.00005, selected=False, swap_long=-2.9, swap_short=-1.1),
        pair("EURJPY", 162.500, 3, 16, 0.00005, path="Forex\\Crosses", swap_long=6.4, swap_short=-18.9),
        pair("GBPJPY", 190.500, 3, 25, 0.00006, path="Forex\\Crosses", selected=False, swap_long=9.1),
        pair("EURGBP", 0.85500, 5, 12, 0.00003, path="Forex\\Crosses", selected=False, swap_long=-5.0),
        pair("AUDJPY", 99.000, 3, 18, 0.00006, path="Forex\\Crosses", selected=False, swap_long=4.2),
        pair("EURCHF", 0.95500, 5, 16, 0.00003, path="Forex\\Crosses", selected=False, swap_long=-3.1),
        cfd(
            "XAGUSD", "Silver vs US Dollar", "Metals", "USD",
            currency_base="XAG", digits=3, contract_size=5000.0, calc_mode=mt5.SYMBOL_CALC_MODE_CFDLEVERAGE,
            commission_per_lot=commission, volume_max=50.0, stops_level=10, liquidity_lots=10.0,
            start_price=29.500, spread_points=30, volatility=0.0001,
        ),
        cfd(
            "US30", "Wall Street 30 Index CFD", "Indices", "USD",
            digits=2, contract_size=1.0, calc_mode=mt5.SYMBOL_CALC_MODE_CFD, margin_rate=0.05,
            volume_min=0.1, volume_step=0.1, volume_max=500.0, stops_level=100, liquidity_lots=200.0,
            start_price=39000.00, spread_points=250, volatility=0.00006,
        ),
        cfd(
            "NAS100", "US Tech 100 Index CFD", "Indices", "USD",
            digits=2, contract_size=1.0, calc_mode=mt5.SYMBOL_CALC_MODE_CFD, margin_rate=0.05,
            volume_min=0.1, volume_step=0.1, volume_max=500.0, stops_level=100, liquidity_lots=200.0,
            start_price=18200.00, spread_points=150, volatility=0.00008,
        ),
        cfd(
            "GER40", "Germany 40 Index CFD", "Indices", "EUR",
            digits=2, contract_size=1.0, calc_mode=mt5.SYMBOL_CALC_MODE_CFD, margin_rate=0.05,
            volume_min=0.1, volume_step=0.1, volume_max=500.0, stops_level=100, liquidity_lots=200.0,
            start_price=18500.00, spread_points=150, volatility=0.00007,
        ),
        cfd(
            "UK100", "UK 100 Index CFD", "Indices", "GBP",
            digits=2, contract_size=1.0, calc_mode=mt5.SYMBOL_CALC_MODE_CFD, margin_rate=0.05,
            volume_min=0.1, volume_step=0.1, volume_max=500.0, stops_level=100, liquidity_lots=200.0,
            start_price=8200.00, spread_points=100, volatility=0.00006,
        ),
        cfd(
            "ETHUSD", "Ethereum vs US Dollar (trades at weekends)", "Crypto", "USD",
            currency_base="ETH", digits=2, contract_size=1.0, calc_mode=mt5.SYMBOL_CALC_MODE_CFD,
            margin_rate=0.5, volume_max=100.0, liquidity_lots=20.0, start_price=3400.00,
            spread_points=300, volatility=0.00025, weekend_trading=True,
        ),
    )  # fmt: skip


def default_config(seed: int = 42) -> BrokerConfig:
    """Two brokers: "MTRobot-Demo" (hedging, instant execution) and "Northwind-Live" (netting, market), with
    five years of history behind every symbol and prices that move together where currencies are shared."""
    return BrokerConfig(
        seed=seed,
        history_days=DEFAULT_HISTORY_DAYS,
        correlated_prices=True,
        servers=(
            ServerConfig(
                name="MTRobot-Demo",
                company="MTRobot Simulated Markets Ltd",
                timezone="fx",
                margin_mode=mt5.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,
                trade_mode=mt5.ACCOUNT_TRADE_MODE_DEMO,
                margin_call=100.0,
                margin_stopout=50.0,
                login_base=5_000_000,
                symbols=default_symbols("instant"),
            ),
            ServerConfig(
                name="Northwind-Live",
                company="Northwind Brokerage Corp",
                timezone="fx",
                margin_mode=mt5.ACCOUNT_MARGIN_MODE_RETAIL_NETTING,
                trade_mode=mt5.ACCOUNT_TRADE_MODE_REAL,
                margin_call=70.0,
                margin_stopout=50.0,
                slippage_points=3,
                login_base=7_000_000,
                symbols=default_symbols("market", live=True),
            ),
        ),
    )


def always_open(config: BrokerConfig) -> BrokerConfig:
    """``config`` with every symbol trading seven days a week and no daily break: for drills, benchmarks and
    tests of the order path that must not depend on the day or the hour they run at."""
    servers = tuple(
        server.model_copy(
            update={
                "maintenance_minutes": 0,
                "symbols": tuple(s.model_copy(update={"weekend_trading": True}) for s in server.symbols),
            }
        )
        for server in config.servers
    )
    return config.model_copy(update={"servers": servers})
