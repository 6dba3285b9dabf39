"""Conformance checks for a real MT5 terminal behind the ``metatrader5`` or ``mt5linux`` backend.

``mtrobot conformance --backend metatrader5`` (or ``mt5linux``) runs them against the account given by
``MTROBOT_MT5_LOGIN``, ``MTROBOT_MT5_PASSWORD`` and ``MTROBOT_MT5_SERVER``; without them it prints what it
needs and skips. The same checks run in the test suite against the recording stand-in (tests/conformance).

Read-only by default: every check reads, calculates or asks ``order_check`` (a dry run). Only with
``--trade`` and only on a *demo* account does it open and close one minimum-volume position.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import SecretStr

from mtrobot.broker import constants as mt5
from mtrobot.broker import structures as s
from mtrobot.broker.arrays import RATES_DTYPE, TICKS_DTYPE
from mtrobot.broker.terminal import Terminal

ENV_LOGIN, ENV_PASSWORD, ENV_SERVER = "MTROBOT_MT5_LOGIN", "MTROBOT_MT5_PASSWORD", "MTROBOT_MT5_SERVER"
CONFORMANCE_MAGIC = 990_001
DAY = 86_400


@dataclass(frozen=True)
class Credentials:
    login: int
    password: SecretStr
    server: str


@dataclass(frozen=True)
class Requirement:
    """One thing the run needs, and whether this machine has it."""

    name: str
    description: str
    satisfied: bool | None


def credentials_from_env(environ: Mapping[str, str] | None = None) -> Credentials | None:
    """The account to test, or ``None`` when any variable is missing or the login is not a number."""
    env = os.environ if environ is None else environ
    login, password, server = env.get(ENV_LOGIN, ""), env.get(ENV_PASSWORD, ""), env.get(ENV_SERVER, "")
    if not (login.strip().isdigit() and password and server.strip()):
        return None
    return Credentials(int(login), SecretStr(password), server.strip())


def requirements(backend: str, environ: Mapping[str, str] | None = None) -> list[Requirement]:
    """Everything a run against a real terminal needs (never showing a secret's value). ``satisfied`` is
    ``None`` for what only the run itself can find out (a bridge server that answers)."""
    env = os.environ if environ is None else environ
    need_text = "its password (the master one for --trade; the investor one is enough otherwise)"
    needs = [
        Requirement(ENV_LOGIN, "the MT5 account number", env.get(ENV_LOGIN, "").strip().isdigit()),
        Requirement(ENV_PASSWORD, need_text, bool(env.get(ENV_PASSWORD))),
        Requirement(
            ENV_SERVER, "the broker's trade server, as the terminal names it", bool(env.get(ENV_SERVER))
        ),
    ]
    if backend == "metatrader5":
        have_mt5 = importlib.util.find_spec("MetaTrader5") is not None
        needs.append(Requirement("MetaTrader5 package", "on Windows: pip install 'mtrobot[mt5]'", have_mt5))
        needs.append(Requirement("terminal", "terminal64.exe on this machine (--terminal-path for one of "
                                 "several installs), Algo Trading allowed", None))  # fmt: skip
    if backend == "mt5linux":
        have_rpyc = importlib.util.find_spec("rpyc") is not None
        needs.append(Requirement("rpyc package", "pip install 'mtrobot[mt5linux]'", have_rpyc))
        needs.append(Requirement("mt5linux server", "running in the terminal's Wine prefix, reachable at "
                                 "--bridge-host/--bridge-port (default 127.0.0.1:18812)", None))  # fmt: skip
    return needs


@dataclass
class Outcome:
    name: str
    status: str  # "pass" | "fail" | "warn" | "skip"
    detail: str = ""


class CheckFailed(AssertionError):
    """A conformance check found the terminal not behaving as the interface says."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass
class Context:
    """What the checks share: the terminal under test and what earlier checks learned."""

    terminal: Terminal
    credentials: Credentials
    symbol: str
    trade: bool
    warnings: list[str] = field(default_factory=list)
    info: s.SymbolInfo | None = None
    now: int = 0

    async def error(self) -> tuple[int, str]:
        return await self.terminal.last_error()


Check = Callable[[Context], Awaitable[str]]


async def check_initialize(ctx: Context) -> str:
    creds = ctx.credentials
    ok = await ctx.terminal.initialize(login=creds.login, password=creds.password.get_secret_value(),
                                       server=creds.server)  # fmt: skip
    expect(ok is True, f"initialize failed: {await ctx.error()}")
    expect(await ctx.error() == (1, "Success"), f"last_error after success is {await ctx.error()}")
    version = await ctx.terminal.version()
    expect(version is not None and isinstance(version[1], int), f"version() gave {version!r}")
    assert version is not None
    return f"terminal {version[0]} build {version[1]} ({version[2]})"


async def check_terminal_and_account(ctx: Context) -> str:
    term = await ctx.terminal.terminal_info()
    account = await ctx.terminal.account_info()
    expect(
        type(term) is s.TerminalInfo and type(account) is s.AccountInfo, "info calls returned no structures"
    )
    assert term is not None and account is not None
    expect(term.connected, "the terminal is not connected to the trade server")
    expect(
        account.login == ctx.credentials.login, f"logged into {account.login}, not {ctx.credentials.login}"
    )
    if not term.trade_allowed:
        ctx.warnings.append("Algo Trading is off in the terminal: every order_send will answer 10027")
    if term.tradeapi_disabled:
        ctx.warnings.append(
            "the terminal disables trading through the Python API (Options > Expert Advisors)"
        )
    if not account.trade_allowed:
        ctx.warnings.append("the account may not trade (investor password, or trading disabled)")
    mode = {0: "demo", 1: "contest", 2: "real"}.get(account.trade_mode, str(account.trade_mode))
    return f"{account.company} / {account.server}: {mode} account {account.login} in {account.currency}"


async def check_symbol(ctx: Context) -> str:
    t = ctx.terminal
    expect(await t.symbols_total() > 0, f"symbols_total() is 0: {await ctx.error()}")
    expect(
        await t.symbol_select(ctx.symbol, True), f"symbol_select({ctx.symbol!r}) failed: {await ctx.error()}"
    )
    found = await t.symbols_get(ctx.symbol)
    expect(bool(found) and found is not None and found[0].name == ctx.symbol, f"symbols_get gave {found!r}")
    info = await t.symbol_info(ctx.symbol)
    expect(type(info) is s.SymbolInfo, f"symbol_info failed: {await ctx.error()}")
    assert info is not None
    expect(info.point > 0 and info.volume_min > 0 and info.volume_step > 0, "point/volume fields are not set")
    tick = await t.symbol_info_tick(ctx.symbol)
    expect(type(tick) is s.Tick and tick is not None and tick.time > 0, f"no tick: {await ctx.error()}")
    assert tick is not None
    ctx.info, ctx.now = info, tick.time
    return f"{ctx.symbol}: digits {info.digits}, bid {tick.bid} ask {tick.ask} at server time {tick.time}"


async def check_unknown_symbol_fails_with_last_error(ctx: Context) -> str:
    expect(await ctx.terminal.symbol_info("MTROBOT_NO_SUCH_SYMBOL") is None, "an unknown symbol had info")
    code, description = await ctx.error()
    expect(code != 1, "last_error() still says success after a failure")
    return f"None with last_error ({code}, {description!r})"


async def check_bars_and_ticks(ctx: Context) -> str:
    t, sym, now = ctx.terminal, ctx.symbol, ctx.now
    rates = [await t.copy_rates_from_pos(sym, mt5.TIMEFRAME_M1, 0, 10),
             await t.copy_rates_from(sym, mt5.TIMEFRAME_H1, now, 10),
             await t.copy_rates_range(sym, mt5.TIMEFRAME_H1, now - DAY, now)]  # fmt: skip
    for got in rates:
        expect(isinstance(got, np.ndarray) and got.dtype == RATES_DTYPE, f"bad rates: {await ctx.error()}")
        assert got is not None
        expect(bool(np.all(np.diff(got["time"]) > 0)), "bar times are not increasing")
    ticks = [await t.copy_ticks_from(sym, now - 3_600, 100, mt5.COPY_TICKS_ALL),
             await t.copy_ticks_range(sym, now - 600, now, mt5.COPY_TICKS_ALL)]  # fmt: skip
    for got in ticks:
        expect(isinstance(got, np.ndarray) and got.dtype == TICKS_DTYPE, f"bad ticks: {await ctx.error()}")
    return f"{len(rates[0])} M1 bars, {len(ticks[0])} ticks in the last hour"  # type: ignore[arg-type]


async def check_book_and_history(ctx: Context) -> str:
    t = ctx.terminal
    orders, positions = await t.orders_get(), await t.positions_get()
    expect(orders is not None and positions is not None, f"orders/positions failed: {await ctx.error()}")
    assert orders is not None and positions is not None
    expect(await t.orders_total() == len(orders), "orders_total disagrees with orders_get")
    expect(await t.positions_total() == len(positions), "positions_total disagrees with positions_get")
    window = (ctx.now - 30 * DAY, ctx.now + DAY)
    h_orders, deals = await t.history_orders_get(*window), await t.history_deals_get(*window)
    expect(h_orders is not None and deals is not None, f"history failed: {await ctx.error()}")
    assert h_orders is not None and deals is not None
    expect(await t.history_orders_total(*window) == len(h_orders), "history_orders_total disagrees")
    expect(await t.history_deals_total(*window) == len(deals), "history_deals_total disagrees")
    return f"{len(orders)} orders, {len(positions)} positions, {len(deals)} deals in 30 days"


def market_request(info: s.SymbolInfo, order_type: int, price: float, **extra: Any) -> dict[str, Any]:
    filling = (mt5.ORDER_FILLING_FOK if info.filling_mode & mt5.SYMBOL_FILLING_FOK
               else mt5.ORDER_FILLING_IOC if info.filling_mode & mt5.SYMBOL_FILLING_IOC
               else mt5.ORDER_FILLING_RETURN)  # fmt: skip
    request = {"action": mt5.TRADE_ACTION_DEAL, "symbol": info.name, "volume": info.volume_min,
               "type": order_type, "price": price, "deviation": 20, "type_filling": filling,
               "magic": CONFORMANCE_MAGIC, "comment": "mtrobot conformance"}  # fmt: skip
    return request | extra


async def check_calculations(ctx: Context) -> str:
    t, info = ctx.terminal, ctx.info
    expect(info is not None, "needs the symbol check")
    assert info is not None
    margin = await t.order_calc_margin(mt5.ORDER_TYPE_BUY, info.name, info.volume_min, info.ask)
    profit = await t.order_calc_profit(mt5.ORDER_TYPE_BUY, info.name, info.volume_min, info.ask, info.bid)
    expect(isinstance(margin, float) and isinstance(profit, float), f"calc failed: {await ctx.error()}")
    check = await t.order_check(market_request(info, mt5.ORDER_TYPE_BUY, info.ask))
    expect(type(check) is s.OrderCheckResult, f"order_check failed: {await ctx.error()}")
    assert check is not None
    expect(type(check.request) is s.TradeRequest, "order_check did not echo the request")
    refused = await t.order_check({**market_request(info, mt5.ORDER_TYPE_BUY, info.ask), "volume": "x"})
    expect(refused is None and (await ctx.error())[0] == -2, "a wrong field type was not refused with -2")
    return f"margin {margin}, order_check retcode {check.retcode} ({check.comment})"


async def check_trade_round_trip(ctx: Context) -> str:
    if not ctx.trade:
        raise Skip("read-only run (add --trade on a demo account)")
    t, info = ctx.terminal, ctx.info
    account = await t.account_info()
    if account is None or account.trade_mode != mt5.ACCOUNT_TRADE_MODE_DEMO:
        raise Skip("--trade runs on demo accounts only")
    assert info is not None
    tick = await t.symbol_info_tick(info.name)
    assert tick is not None
    sent = await t.order_send(market_request(info, mt5.ORDER_TYPE_BUY, tick.ask))
    expect(sent is not None, f"order_send returned None: {await ctx.error()}")
    assert sent is not None
    expect(sent.retcode in (10008, 10009), f"open answered {sent.retcode} {sent.comment!r}")
    opened = [p for p in await t.positions_get(symbol=info.name) or () if p.magic == CONFORMANCE_MAGIC]
    expect(len(opened) >= 1, "the new position is not in positions_get")
    position = opened[-1]
    tick = await t.symbol_info_tick(info.name)
    assert tick is not None
    closing = market_request(
        info, mt5.ORDER_TYPE_SELL, tick.bid, position=position.ticket, volume=position.volume
    )
    closed = await t.order_send(closing)
    expect(closed is not None and closed.retcode in (10008, 10009), f"close failed: {closed!r}")
    deals = await t.history_deals_get(position=position.identifier)
    return f"opened and closed position {position.ticket}; {len(deals or ())} deals recorded"


async def check_shutdown(ctx: Context) -> str:
    await ctx.terminal.shutdown()
    return "IPC channel closed"


class Skip(Exception):
    """The check does not apply to this run."""


CHECKS: tuple[tuple[str, Check], ...] = (
    ("initialize and version", check_initialize),
    ("terminal and account", check_terminal_and_account),
    ("symbol, Market Watch and tick", check_symbol),
    ("failure gives None and last_error", check_unknown_symbol_fails_with_last_error),
    ("bars and ticks", check_bars_and_ticks),
    ("orders, positions and history", check_book_and_history),
    ("margin, profit and order_check", check_calculations),
    ("demo trade round trip", check_trade_round_trip),
    ("shutdown", check_shutdown),
)


async def run_checks(terminal: Terminal, credentials: Credentials, *, symbol: str = "EURUSD",
                     trade: bool = False) -> list[Outcome]:  # fmt: skip
    """Run every check in order; a failed check does not stop the later ones (except initialize)."""
    ctx = Context(terminal, credentials, symbol, trade)
    outcomes: list[Outcome] = []
    for name, check in CHECKS:
        try:
            outcomes.append(Outcome(name, "pass", await check(ctx)))
        except Skip as skip:
            outcomes.append(Outcome(name, "skip", str(skip)))
        except (CheckFailed, AssertionError) as failed:
            outcomes.append(Outcome(name, "fail", str(failed)))
            if check is check_initialize:
                break
    outcomes += [Outcome("operator note", "warn", warning) for warning in ctx.warnings]
    return outcomes


async def conformance_command(
    backend: str,
    options: dict[str, Any],
    *,
    symbol: str,
    trade: bool,
    dry_run: bool,
    echo: Callable[[str], None],
    environ: Mapping[str, str] | None = None,
) -> int:
    """``mtrobot conformance``: list what the run needs, then run the checks (exit code 1 on a failure)."""
    from mtrobot.broker.backends import open_terminal

    needs = requirements(backend, environ)
    echo(f"mtrobot conformance, backend {backend}; it needs:")
    for need in needs:
        mark = {True: "x", False: " ", None: "?"}[need.satisfied]
        echo(f"  [{mark}] {need.name}: {need.description}")
    missing = [need.name for need in needs if need.satisfied is False]
    if dry_run:
        echo(f"checks ({'with' if trade else 'without'} a demo trade): " + "; ".join(n for n, _ in CHECKS))
        echo(
            "dry run: no terminal was contacted"
            + (f"; still missing: {', '.join(missing)}" if missing else "")
        )
        return 0
    credentials = credentials_from_env(environ)
    if missing or credentials is None:
        echo(f"SKIPPED: set {', '.join(missing)} to run against a real terminal")
        return 0
    terminal = open_terminal(backend, **options)
    outcomes = await run_checks(terminal, credentials, symbol=symbol, trade=trade)
    for outcome in outcomes:
        echo(f"  {outcome.status.upper():4} {outcome.name}: {outcome.detail}")
    failed = sum(outcome.status == "fail" for outcome in outcomes)
    echo(f"{'FAILED' if failed else 'PASSED'}: {len(outcomes)} results, {failed} failed")
    return 1 if failed else 0
