"""The simulated broker: several named trade servers in one process, their sessions, and the back office
(accounts, balance operations, fault injection) that tests and the platform drive via the admin channel."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.core.errors import ConfigError
from mtrobot.logging import get_logger
from mtrobot.sim.clock import Clock, RealClock, VirtualClock
from mtrobot.sim.config import BrokerConfig, default_config
from mtrobot.sim.desk import Desk
from mtrobot.sim.prices import ReplayFeed
from mtrobot.sim.server import TradeServer
from mtrobot.sim.session import Session

_SYMBOL_FIELDS = frozenset(
    {
        "trade_mode",
        "stops_level",
        "freeze_level",
        "execution",
        "filling_mode",
        "expiration_mode",
        "order_mode",
        "order_gtc_mode",
        "volume_min",
        "volume_max",
        "volume_step",
        "volume_limit",
        "liquidity_lots",
        "commission_per_lot",
    }
)
_ACCOUNT_FIELDS = frozenset({"trade_allowed", "trade_expert", "leverage", "name"})
_SERVER_FIELDS = frozenset(
    {
        "fifo_close",
        "hedge_prohibited",
        "limit_orders",
        "limit_positions",
        "slippage_points",
        "margin_call",
        "margin_stopout",
        "margin_call_blocks_new",
        "max_requests_per_second",
        "inactivity_timeout_s",
        "requote_both_ways",
        "sltp_on_market_open",
        "stops_strict",
        "comment_length",
        "strict_comments",
    }
)


log = get_logger(__name__)

_QUIET = frozenset({"info", "server_time", "account_state", "login_times"})
_LOGGED = frozenset(
    {"server", "login", "symbol", "n", "ms", "seconds", "retcode", "mode", "execute", "frozen", "off"}
)


def _plain(value: Any) -> bool:
    return isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 64)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


class SimBroker:
    def __init__(self, config: BrokerConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or default_config()
        self.clock = clock or RealClock()
        self.servers: dict[str, TradeServer] = {
            s.name: TradeServer(
                s,
                self.clock,
                self.config.seed,
                self.config.history_minutes,
                self.config.history_days,
                self.config.correlated_prices,
            )
            for s in self.config.servers
        }
        self._desks = {name: Desk(server) for name, server in self.servers.items()}
        self.sessions: set[Session] = set()
        self.default_inactivity_s = 30.0

    def desk(self, server: str) -> Desk:
        return self._desks[server]

    def server(self, name: str) -> TradeServer:
        server = self.servers.get(name)
        if server is None:
            raise ConfigError(f"server: unknown trade server {name!r}; known: {', '.join(self.servers)}")
        return server

    def new_session(self, **terminal: bool) -> Session:
        return Session(self, **terminal)

    def sync(self) -> None:
        for server in self.servers.values():
            server.sync()

    def find_account(self, login: int) -> tuple[TradeServer, Any]:
        for server in self.servers.values():
            if login in server.accounts:
                return server, server.accounts[login]
        raise ConfigError(f"login: no account {login}")

    def revision(self) -> int:
        """Changes to the books so far, over every server."""
        return sum(server.revision for server in self.servers.values())

    def sessions_of(self, server: str) -> list[Session]:
        return [s for s in self.sessions if s.server is not None and s.server.name == server]

    def load_replay(self, server: str, symbol: str, ticks: list[tuple[int, float, float]]) -> None:
        """Replace a symbol's synthetic prices with recorded ticks (server time ms, bid, ask)."""
        srv = self.server(server)
        spec = srv.specs.get(symbol)
        if spec is None:
            raise ConfigError(f"symbol: {symbol!r} is not on {server}")
        srv.feeds[symbol] = ReplayFeed(spec, ticks)


class AdminApi:
    """The back office and fault injector (never reachable from a terminal session). Every method takes
    keyword arguments only and returns plain data, so the TCP admin channel can expose it unchanged."""

    OPERATIONS = (
        "create_account",
        "balance_operation",
        "set_account",
        "drop_connections",
        "set_latency",
        "requote_next",
        "reject_next",
        "lose_replies",
        "freeze_prices",
        "quotes_off",
        "set_quote",
        "start_maintenance",
        "end_maintenance",
        "update_symbol",
        "update_server",
        "advance_clock",
        "reset_faults",
        "info",
        "server_time",
        "account_state",
        "login_times",
    )

    def __init__(self, broker: SimBroker) -> None:
        self.broker = broker

    def create_account(
        self,
        *,
        server: str,
        password: str,
        investor_password: str,
        balance: float = 10_000.0,
        currency: str = "USD",
        leverage: int = 100,
        name: str = "",
        login: int | None = None,
        credit: float = 0.0,
    ) -> int:
        """Open an account; returns its login."""
        for field, secret in (("password", password), ("investor_password", investor_password)):
            if not isinstance(secret, str) or not 8 <= len(secret) <= 128:
                raise ConfigError(f"{field}: must be a text of 8 to 128 characters")
        if password == investor_password:
            raise ConfigError("investor_password: must differ from the master password")
        if not isinstance(name, str) or len(name) > 64:
            raise ConfigError("name: at most 64 characters")
        if not isinstance(currency, str) or not currency.isalpha() or len(currency) != 3:
            raise ConfigError("currency: a three-letter code such as USD")
        if login is not None and not (_is_int(login) and 0 < login < 2**63):
            raise ConfigError("login: a positive integer")
        if not (_is_int(leverage) and 1 <= leverage <= 10_000):
            raise ConfigError("leverage: must be an integer between 1 and 10000")
        if not (_is_number(balance) and 0 <= balance <= 1e12):
            raise ConfigError("balance: a number between 0 and 1e12")
        if not (_is_number(credit) and 0 <= credit <= 1e12):
            raise ConfigError("credit: a number between 0 and 1e12")
        srv = self.broker.server(server)
        account = srv.create_account(
            balance=float(balance),
            currency=currency,
            leverage=leverage,
            password=password,
            investor_password=investor_password,
            name=name,
            login=login,
            credit=float(credit),
        )
        return account.login

    def balance_operation(self, *, login: int, amount: float, comment: str = "") -> int:
        """Deposit (positive) or withdraw (negative) as the broker's back office; returns the deal ticket."""
        if not (_is_number(amount) and 0 < abs(amount) <= 1e12):
            raise ConfigError("amount: a non-zero number up to 1e12 in size")
        server, account = self.broker.find_account(login)
        return server.balance_operation(
            account, float(amount), comment or ("Deposit" if amount > 0 else "Withdrawal")
        ).ticket

    def set_account(self, *, login: int, **changes: Any) -> None:
        """Change ``trade_allowed``, ``trade_expert``, ``leverage`` or ``name`` of an account."""
        _, account = self.broker.find_account(login)
        for key, value in changes.items():
            if key not in _ACCOUNT_FIELDS:
                raise ConfigError(
                    f"{key}: not a changeable account field ({', '.join(sorted(_ACCOUNT_FIELDS))})"
                )
            setattr(account, key, value)
        self.broker.server(account.server).revision += 1

    def drop_connections(self, *, server: str) -> int:
        """Drop every terminal session on ``server``; returns how many."""
        sessions = self.broker.sessions_of(self.broker.server(server).name)
        for session in sessions:
            session.close()
        return len(sessions)

    def set_latency(self, *, server: str, ms: int) -> None:
        """Delay every answer of ``server`` by ``ms`` (0 to 60000)."""
        if not (_is_int(ms) and 0 <= ms <= 60_000):
            raise ConfigError("ms: an integer between 0 and 60000")
        self.broker.server(server).faults.latency_ms = ms

    def requote_next(self, *, server: str, n: int = 1) -> None:
        self.broker.server(server).faults.requote_next = max(0, int(n))

    def reject_next(
        self, *, server: str, n: int = 1, retcode: int = mt5.TRADE_RETCODE_REJECT, execute: bool = False
    ) -> None:
        """The next ``n`` order_send answer ``retcode``. With ``execute=True`` the request is executed all
        the same (e.g. 10012 TIMEOUT or 10031 CONNECTION after the fact: the ambiguous outcomes)."""
        faults = self.broker.server(server).faults
        faults.reject_next, faults.reject_retcode = max(0, int(n)), int(retcode)
        faults.reject_execute = bool(execute)

    def lose_replies(self, *, server: str, n: int = 1, mode: str = "drop") -> None:
        """The next ``n`` order_send are executed but their answer is lost: ``"drop"`` closes the connection
        (the client sees -10002), ``"timeout"`` never answers (the client sees -10005 after its timeout)."""
        if mode not in ("drop", "timeout"):
            raise ConfigError("mode: 'drop' or 'timeout'")
        faults = self.broker.server(server).faults
        faults.lose_replies, faults.lose_mode = max(0, int(n)), mode  # type: ignore[assignment]

    def freeze_prices(self, *, server: str, frozen: bool = True, symbol: str | None = None) -> None:
        srv = self.broker.server(server)
        srv.sync()
        for name, feed in srv.feeds.items():
            if symbol is None or symbol == name:
                feed.frozen = frozen

    def quotes_off(self, *, server: str, symbol: str, off: bool = True) -> None:
        """The server has no quote for ``symbol``: trade requests get 10021 "No prices"."""
        faults = self.broker.server(server).faults
        (faults.quotes_off.add if off else faults.quotes_off.discard)(symbol)

    def set_quote(self, *, server: str, symbol: str, bid: float, ask: float | None = None) -> dict[str, Any]:
        """Force the current quote (ask defaults to bid + the current spread); triggers act on it at once."""
        if not (_is_number(bid) and 0 < bid < 1e9):
            raise ConfigError("bid: a positive price")
        if ask is not None and not (_is_number(ask) and bid <= ask < 1e9):
            raise ConfigError("ask: a price not below the bid")
        srv = self.broker.server(server)
        srv.sync()
        feed = srv.feeds.get(symbol)
        if feed is None:
            raise ConfigError(f"symbol: {symbol!r} is not on {server}")
        tick = feed.force_quote(srv.now_ms(), float(bid), None if ask is None else float(ask))
        srv.on_tick(symbol, tick)
        return tick._asdict()

    def start_maintenance(self, *, server: str, seconds: float, disconnect: bool = True) -> int:
        """Close the market now for ``seconds`` (10018), refuse logins (-10005) and, by default, drop every
        session. Returns the server time (ms) when it ends."""
        if not (_is_number(seconds) and 0 < seconds <= 7 * 86400):
            raise ConfigError("seconds: between 0 and a week")
        srv = self.broker.server(server)
        srv.schedule.forced_until_ms = srv.now_ms() + int(seconds * 1000)
        if disconnect:
            self.drop_connections(server=server)
        return srv.schedule.forced_until_ms

    def end_maintenance(self, *, server: str) -> None:
        self.broker.server(server).schedule.forced_until_ms = 0

    def update_symbol(self, *, server: str, symbol: str, **changes: Any) -> None:
        srv = self.broker.server(server)
        spec = srv.specs.get(symbol)
        if spec is None:
            raise ConfigError(f"symbol: {symbol!r} is not on {server}")
        unknown = set(changes) - _SYMBOL_FIELDS
        if unknown:
            raise ConfigError(f"{sorted(unknown)[0]}: not a changeable symbol field")
        new = spec.model_validate(spec.model_dump() | changes)
        srv.specs[symbol] = new
        srv.feeds[symbol].spec = new

    def update_server(self, *, server: str, **changes: Any) -> None:
        srv = self.broker.server(server)
        unknown = set(changes) - _SERVER_FIELDS
        if unknown:
            raise ConfigError(f"{sorted(unknown)[0]}: not a changeable server field")
        srv.config = srv.config.model_validate(srv.config.model_dump() | changes)

    def advance_clock(self, *, seconds: float) -> int:
        """Move a virtual clock forward (prices and triggers follow); returns the new UTC ms."""
        clock = self.broker.clock
        if not isinstance(clock, VirtualClock):
            raise ConfigError("clock: only a virtual clock can be advanced")
        if not (_is_number(seconds) and 0 <= seconds <= 31 * 86400):
            raise ConfigError("seconds: between 0 and 31 days per call")
        clock.advance(seconds)
        for server in self.broker.servers.values():
            if server.accounts:  # the others catch up when first used (feeds are pulled, not pushed)
                server.sync()
        return clock.now_ms()

    def reset_faults(self, *, server: str) -> None:
        srv = self.broker.server(server)
        srv.faults = replace(
            srv.faults, latency_ms=0, requote_next=0, reject_next=0, lose_replies=0, quotes_off=set()
        )
        srv.schedule.forced_until_ms = 0
        for feed in srv.feeds.values():
            feed.frozen = False

    def info(self) -> dict[str, Any]:
        return {
            "servers": [
                {
                    "name": s.name,
                    "company": s.config.company,
                    "margin_mode": s.config.margin_mode,
                    "symbols": list(s.specs),
                    "accounts": len(s.accounts),
                    "sessions": len(self.broker.sessions_of(s.name)),
                    "server_time_ms": s.now_ms(),
                }
                for s in self.broker.servers.values()
            ],
        }

    def login_times(self, *, server: str, since_ms: int = 0) -> list[int]:
        """Server time (ms) of every login request ``server`` received at or after ``since_ms``, refused ones
        too, oldest first (the latest 20,000 are kept)."""
        if not (_is_int(since_ms) and 0 <= since_ms < 2**53):
            raise ConfigError("since_ms: server time in epoch milliseconds, a whole number")
        return [t for t in self.broker.server(server).logins if t >= since_ms]

    def server_time(self, *, server: str) -> int:
        """The server's wall clock in epoch milliseconds (what MT5 time fields are based on)."""
        return self.broker.server(server).now_ms()

    def account_state(self, *, login: int) -> dict[str, Any]:
        """Balance, open positions and orders and the deal count of an account (for tests and the UI)."""
        server, account = self.broker.find_account(login)
        server.sync()
        fig = server.figures(account)
        return {
            "server": server.name,
            "balance": account.balance,
            "equity": fig.equity,
            "margin": fig.margin,
            "positions": [p.to_struct()._asdict() for p in account.positions.values()],
            "orders": [o.to_struct()._asdict() for o in account.orders.values()],
            "deals": len(account.deals),
        }

    def call(self, op: str, kwargs: dict[str, Any]) -> Any:
        if op not in self.OPERATIONS:
            raise ConfigError(f"op: unknown admin operation {op!r}")
        if op not in _QUIET:  # an operator can see who changed what; never a password
            log.info(
                "simbroker admin", op=op, **{k: v for k, v in kwargs.items() if k in _LOGGED and _plain(v)}
            )
        return getattr(self, op)(**kwargs)
