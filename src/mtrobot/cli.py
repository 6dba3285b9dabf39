"""The ``mtrobot`` command line (DESIGN.md 3.1). Wiring only: each command builds settings and hands over."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from mtrobot import eventloop
from mtrobot.core.errors import MtrobotError
from mtrobot.logging import configure_logging
from mtrobot.settings import Settings

app = typer.Typer(
    name="mtrobot",
    help="Self-hostable algorithmic trading for MetaTrader 5.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="data directory (default: $MTROBOT_DATA_DIR or ./.mtrobot)")
]


def load_settings(data_dir: Path | None = None) -> Settings:
    """The settings, or one clear line per refused ``MTROBOT_`` variable and exit code 2 (no traceback)."""
    try:
        return Settings(data_dir=data_dir) if data_dir is not None else Settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "MTROBOT_" + "_".join(str(part) for part in error["loc"]).upper()
            typer.secho(f"error: {name}: {error['msg']}", fg="red", err=True)
        raise typer.Exit(2) from None


def run_async(coro: Coroutine[Any, Any, int | None], *, fast_loop: bool = False) -> int:
    """Run a service coroutine, turning our own errors into one clear line and exit code 1. ``fast_loop``:
    on the loop the web worker and the agents run on (:mod:`mtrobot.eventloop`)."""
    try:
        result = eventloop.run(coro) if fast_loop else asyncio.run(coro)
    except MtrobotError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


def _echo(text: str) -> None:
    print(text, flush=True)


@app.command()
def up(
    data_dir: DataDirOption = None,
    host: Annotated[str, typer.Option(help="address the web interface listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port of the web interface")] = 8000,
    no_demo: Annotated[bool, typer.Option("--no-demo", help="do not create the demo trader")] = False,
) -> None:
    """Start everything embedded: NATS, and every part of the platform, until Ctrl-C."""
    from mtrobot.launcher import Launcher, UpOptions

    settings = load_settings(data_dir)
    configure_logging(stream=sys.stderr, service="up")
    launcher = Launcher(settings, UpOptions(host=host, port=port, demo=not no_demo), echo=_echo)
    raise typer.Exit(run_async(launcher.run()))


@app.command()
def status(
    data_dir: DataDirOption = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the bus")] = 3.0,
) -> None:
    """Show the bus a running `mtrobot up` uses, with its streams and key-value buckets."""
    from mtrobot.status import print_status

    settings = load_settings(data_dir)
    configure_logging(level="WARNING", service="status")
    raise typer.Exit(run_async(print_status(settings, timeout)))


@app.command()
def simbroker(
    data_dir: DataDirOption = None,
    host: Annotated[str, typer.Option(help="address to listen on (keep it on loopback)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one")] = 0,
    config: Annotated[
        Path | None, typer.Option(help="broker configuration (JSON); default: built-in")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the synthetic prices")] = None,
    replay: Annotated[
        list[str] | None, typer.Option(help="SERVER:SYMBOL=FILE, an MT5 bar or tick export to replay")
    ] = None,
    start: Annotated[
        datetime | None, typer.Option(help="virtual clock start (UTC); default: real time")
    ] = None,
    speed: Annotated[
        float,
        typer.Option(min=0, help="virtual clock speed (with --start); 0 holds it (admin advance_clock)"),
    ] = 1.0,
) -> None:
    """Serve the simulated MT5 broker; writes DATA_DIR/run/simbroker.json once listening."""
    from mtrobot.sim.clock import VirtualClock
    from mtrobot.sim.service import load_config, run_simbroker

    settings = load_settings(data_dir)
    configure_logging(stream=sys.stderr, service="simbroker")
    clock = VirtualClock(start.replace(tzinfo=start.tzinfo or UTC), speed=speed) if start else None
    serve = run_simbroker(settings, host, port, load_config(config, seed), replays=replay or [], clock=clock)
    raise typer.Exit(run_async(serve))


@app.command()
def hub(
    data_dir: DataDirOption = None,
    host: Annotated[
        str, typer.Option(help="address the hub API listens on (keep it loopback)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port of the hub API; 0 picks a free one")] = 0,
) -> None:
    """Serve the central configuration hub's HTTP API (writes DATA_DIR/run/hub.json once listening)."""
    from mtrobot.hub.server import serve_hub

    settings = load_settings(data_dir)
    configure_logging(stream=sys.stderr, service="hub")
    raise typer.Exit(run_async(serve_hub(settings, host, port)))


@app.command()
def conformance(
    backend: Annotated[
        str, typer.Option(help="metatrader5 (Windows) or mt5linux (Linux, terminal under Wine)")
    ],
    terminal_path: Annotated[
        str | None, typer.Option(help="metatrader5: this account's terminal64.exe (default: the running one)")
    ] = None,
    portable: Annotated[bool, typer.Option(help="metatrader5: start the terminal with /portable")] = False,
    bridge_host: Annotated[str, typer.Option(help="mt5linux: host of the mt5linux server")] = "127.0.0.1",
    bridge_port: Annotated[int, typer.Option(help="mt5linux: port of the mt5linux server")] = 18812,
    symbol: Annotated[str, typer.Option(help="symbol to read bars, ticks and margins of")] = "EURUSD",
    trade: Annotated[
        bool, typer.Option(help="also open and close a minimum position (demo accounts only)")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="only print what the run needs and what it would check")
    ] = False,
) -> None:
    """Check a real MT5 terminal against mtrobot's terminal interface. The account comes from
    MTROBOT_MT5_LOGIN, MTROBOT_MT5_PASSWORD and MTROBOT_MT5_SERVER; without them the run is skipped."""
    from mtrobot.broker.backends import backend_options
    from mtrobot.broker.conformance import conformance_command

    configure_logging(level="WARNING", service="conformance")
    try:
        options = backend_options(
            backend,
            terminal_path=terminal_path,
            portable=portable,
            bridge_host=bridge_host,
            bridge_port=bridge_port,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--backend") from exc
    command = conformance_command(backend, options, symbol=symbol, trade=trade, dry_run=dry_run, echo=_echo)
    raise typer.Exit(run_async(command))


@app.command()
def connector(
    account: Annotated[str, typer.Option("--account", help="the platform account id this connector serves")],
    data_dir: DataDirOption = None,
    backend: Annotated[str, typer.Option(help="MT5 backend: sim, metatrader5, mt5linux")] = "sim",
    health_port: Annotated[int, typer.Option(help="port of /healthz, /readyz, /metrics; 0 = free")] = 8014,
    login: Annotated[int | None, typer.Option(help="MT5 login (else from the stdin JSON line)")] = None,
    server: Annotated[str | None, typer.Option(help="MT5 server (else from the stdin JSON line)")] = None,
    terminal_path: Annotated[
        str | None, typer.Option(help="metatrader5: this account's terminal64.exe")
    ] = None,
    portable: Annotated[bool, typer.Option(help="metatrader5: start the terminal with /portable")] = False,
    bridge_host: Annotated[str, typer.Option(help="mt5linux: host of the mt5linux server")] = "127.0.0.1",
    bridge_port: Annotated[int, typer.Option(help="mt5linux: port of the mt5linux server")] = 18812,
    recorder: Annotated[
        bool, typer.Option(help="run `mtrobot recorder` beside it (executions, Kafka mirror)")
    ] = True,
) -> None:
    """Run the MT5 connector of one account. The password comes as one JSON line on stdin
    ({"password": "..."}), from MT5_PASSWORD stand-alone, or from the vault; never as an argument.
    The terminal, server and login are fixed for the process: the hub cannot change them."""
    from mtrobot.broker.backends import REAL_BACKENDS, backend_options
    from mtrobot.connector.options import ConnectorOptions
    from mtrobot.connector.runner import read_credentials, run_standalone

    terminal: dict[str, Any] = {}
    if backend in REAL_BACKENDS:
        terminal = backend_options(
            backend,
            terminal_path=terminal_path,
            portable=portable,
            bridge_host=bridge_host,
            bridge_port=bridge_port,
        )

    settings = load_settings(data_dir)
    configure_logging(stream=sys.stderr, service=f"connector-{account}")
    try:
        credentials = read_credentials()
    except MtrobotError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    if login is not None:
        credentials["login"] = login
    if server is not None:
        credentials["server"] = server
    raise typer.Exit(
        run_async(
            run_standalone(
                account,
                settings,
                credentials,
                backend=backend,
                health_port=health_port,
                recorder=recorder,
                options=ConnectorOptions(terminal_options=terminal),
            )
        )
    )


@app.command()
def recorder(
    data_dir: DataDirOption = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="fills per insert at most")] = 1000,
    ack_wait: Annotated[
        float,
        typer.Option(min=0.5, max=600, help="seconds before a batch taken by a crashed recorder returns"),
    ] = 10.0,
) -> None:
    """Record fills into ClickHouse `executions` (chDB in the data dir, or MTROBOT_CLICKHOUSE_URL) and
    mirror the broker audit log to Kafka when MTROBOT_KAFKA_BOOTSTRAP is set, until Ctrl-C."""
    from mtrobot.recorder.service import run_recorder

    settings = load_settings(data_dir)
    configure_logging(stream=sys.stderr, service="recorder")
    raise typer.Exit(run_async(run_recorder(settings, batch, ack_wait)))


@app.command()
def agent(
    account: Annotated[str, typer.Option("--account", help="the platform account id this agent serves")],
    data_dir: DataDirOption = None,
) -> None:
    """Run one account's agent: its broker session, order path, robots and snapshots. `mtrobot supervisor`
    runs the same agent as `python -m mtrobot.agent` and sends the account's sealed credentials on stdin
    (never as an argument)."""
    from mtrobot.agent.entry import ACCOUNT_ID_HELP, run
    from mtrobot.core.ids import is_account_id

    if not is_account_id(account):
        raise typer.BadParameter(ACCOUNT_ID_HELP, param_hint="--account")
    raise typer.Exit(run(account, data_dir))


@app.command()
def supervisor(data_dir: DataDirOption = None) -> None:
    """Keep one agent running per account whose agent should run (from the database), until Ctrl-C."""
    from mtrobot.supervisor.service import run_supervisor

    settings = load_settings(data_dir)
    configure_logging(stream=sys.stderr, service="supervisor")
    raise typer.Exit(run_async(run_supervisor(settings)))


@app.command()
def web(
    data_dir: DataDirOption = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on; 0 picks a free one")] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo", help="create the demo trader once the simulator is up")
    ] = False,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            help="a reverse proxy (address or network) whose X-Forwarded-For is believed; repeatable"
        ),
    ] = None,
) -> None:
    """Serve the web API (migrating the database first) until Ctrl-C."""
    from mtrobot.web.security_throttle import parse_proxies
    from mtrobot.web.server import serve

    try:
        parse_proxies(trusted_proxy or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--trusted-proxy") from None

    settings = load_settings(data_dir)
    configure_logging(stream=sys.stderr, service="web")
    try:
        raise typer.Exit(serve(settings, host, port, demo=demo, trusted_proxies=tuple(trusted_proxy or ())))
    except MtrobotError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None


deadletter_app = typer.Typer(help="Order messages that could not be read, kept aside.", no_args_is_help=True)
app.add_typer(deadletter_app, name="deadletter")


@deadletter_app.command("list")
def deadletter_list(
    account: Annotated[str, typer.Option("--account", help="the platform account id")],
    data_dir: DataDirOption = None,
    limit: Annotated[int, typer.Option(help="show at most the last N")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON record per line")] = False,
) -> None:
    """List an account's dead letters: unreadable order messages the connector acknowledged and kept."""
    from mtrobot.connector.deadletter import list_dead_letters, render
    from mtrobot.core.ids import is_account_id

    if not is_account_id(account):
        raise typer.BadParameter(
            "an account id is 1-64 characters of a-z, 0-9, '_' or '-'", param_hint="--account"
        )
    settings = load_settings(data_dir)
    configure_logging(level="WARNING", service="deadletter")

    async def show() -> int:
        from mtrobot.bus.connect import connect
        from mtrobot.status import operator_creds

        url = settings.discover_nats_url()
        if not url:
            _echo("no bus: set MTROBOT_NATS_URL or start `mtrobot up` on this data dir")
            return 1
        nc = await connect(
            url,
            "mtrobot-deadletter",
            allow_reconnect=False,
            connect_timeout=3.0,
            creds=operator_creds(settings),
        )
        try:
            letters = await list_dead_letters(nc, account, limit)
        finally:
            await nc.close()
        for line in [d.model_dump_json() for d in letters] if as_json else render(letters):
            _echo(line)
        if not as_json:
            _echo(f"{len(letters)} dead letter(s) for account {account}")
        return 0

    raise typer.Exit(run_async(show()))


db_app = typer.Typer(help="Database chores.", no_args_is_help=True)
keys_app = typer.Typer(help="Vault master key chores.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDirOption = None) -> None:
    """Bring the database schema to the latest revision (idempotent)."""
    from mtrobot.storage.db import upgrade_head

    settings = load_settings(data_dir)
    configure_logging(level="WARNING", service="db")
    settings.ensure_dirs()
    upgrade_head(settings.resolved_database_url)
    _echo("database schema is up to date")


mt5_app = typer.Typer(help="The simulator as the MetaTrader5 Python module.", no_args_is_help=True)
app.add_typer(mt5_app, name="mt5")


@mt5_app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def mt5_run(
    script: Annotated[Path, typer.Argument(help="a script written for the MetaTrader5 package")],
    args: Annotated[list[str] | None, typer.Argument(help="the script's own arguments")] = None,
    server: Annotated[str | None, typer.Option(help="trade server of the demo account")] = None,
    login: Annotated[int | None, typer.Option(help="account the terminal has stored")] = None,
    replay: Annotated[
        str | None, typer.Option(help="[SYMBOL=]FILE: an MT5 bar or tick export to replay, in real time")
    ] = None,
    sim: Annotated[
        str | None, typer.Option(help="embedded, a simbroker.json run file or HOST:PORT (default: see docs)")
    ] = None,
    start: Annotated[
        datetime | None, typer.Option(help="private simulator: clock start (UTC), then real speed")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="private simulator: seed of the prices")] = None,
    always_open: Annotated[
        bool, typer.Option("--always-open", help="private simulator: every symbol trades around the clock")
    ] = False,
) -> None:
    """Run SCRIPT.py unchanged: its `import MetaTrader5` is the simulator (docs/mt5-module.md)."""
    from mtrobot.mt5.runner import run_script

    configure_logging(level="WARNING", stream=sys.stderr, service="mt5")
    try:
        status = run_script(
            script,
            args or [],
            target=sim,
            server=server,
            login=login,
            replay=replay,
            start=start.replace(tzinfo=UTC) if start is not None and start.tzinfo is None else start,
            seed=seed,
            always_open=always_open,
        )
    except MtrobotError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(status)


@keys_app.command("rotate")
def keys_rotate(data_dir: DataDirOption = None) -> None:
    """Re-wrap every credential's data key under a new master key, while the platform keeps running."""
    from mtrobot.storage.db import make_engine, session_factory, upgrade_head
    from mtrobot.vault import Vault, load_keyring
    from mtrobot.web.credentials import rotate_master_key

    settings = load_settings(data_dir)
    configure_logging(level="WARNING", service="keys")
    try:
        upgrade_head(settings.resolved_database_url)
        engine = make_engine(settings.resolved_database_url)
        report = rotate_master_key(Vault(load_keyring(settings)), session_factory(engine))
        engine.dispose()
    except MtrobotError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    _echo(f"master key rotated: current key {report.new_key_id}, {report.rewrapped} credentials re-wrapped")
    if report.retired_key_ids:
        where = "MTROBOT_MASTER_KEY" if settings.master_key is not None else "the key file"
        _echo(f"no longer used (removed from {where}): {', '.join(report.retired_key_ids)}")


BENCHMARKS = {"latency", "throughput", "burst", "backtest", "stream", "density", "storm", "books"}


@app.command("robots")
def robots_command(
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the catalogue as JSON")] = False,
) -> None:
    """The robot catalogue: name, what each robot does, its parameters with defaults and ranges."""
    from rich.console import Console

    from mtrobot.robots.commands import load_catalogue, print_catalogue

    configure_logging(level="WARNING", service="robots")
    print_catalogue(load_catalogue(load_settings(data_dir)), as_json=as_json, console=Console())


@app.command()
def backtest(
    robot: Annotated[str, typer.Argument(help="a robot of `mtrobot robots`")],
    symbol: Annotated[str, typer.Option(help="symbol of the simulator (EURUSD, XAUUSD, ...)")] = "EURUSD",
    timeframe: Annotated[str, typer.Option(help="M1 M5 M15 M30 H1 H4 D1")] = "H1",
    date_from: Annotated[str | None, typer.Option("--from", help="first day (server time)")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="end, exclusive (server time)")] = None,
    data: Annotated[
        Path | None, typer.Option(help="MT5 'Export bars' or ticks file; default: bundled")
    ] = None,
    assignments: Annotated[list[str] | None, typer.Option("--set", help="parameter, name=value")] = None,
    out: Annotated[Path | None, typer.Option(help="folder for the results; default: a new one")] = None,
    sweep: Annotated[list[str] | None, typer.Option(help="parameter grid, name=a..b:step")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="processes of a sweep")] = None,
    metric: Annotated[str, typer.Option(help="what the sweep's heatmap shows")] = "net_profit",
    balance: Annotated[float, typer.Option(min=1, max=1e9, help="initial deposit")] = 10_000.0,
    account: Annotated[str, typer.Option(help="hedging (instant execution) or netting (market)")] = "hedging",
    lots: Annotated[float | None, typer.Option(min=0.01, max=100, help="fixed volume per order")] = None,
    risk_percent: Annotated[
        float | None, typer.Option(min=0.01, max=100, help="% of equity per order")
    ] = None,
    spread: Annotated[
        int | None, typer.Option(min=0, max=100_000, help="spread in points (override)")
    ] = None,
    commission: Annotated[float | None, typer.Option(min=0, max=1000, help="per lot and side")] = None,
    leverage: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    data_dir: DataDirOption = None,
) -> None:
    """Backtest a robot on the simulator's MT5 semantics: report.json, deals.csv, equity.png."""
    from rich.console import Console

    from mtrobot.robots import commands
    from mtrobot.robots.catalogue import robots_folder

    configure_logging(level="WARNING", service="backtest")
    settings = load_settings(data_dir)
    console = Console(stderr=False)
    try:
        catalogue = commands.load_catalogue(settings)
        spec = commands.build_spec(
            catalogue,
            robot,
            symbol=symbol,
            timeframe=timeframe,
            data=data,
            date_from=date_from,
            date_to=date_to,
            assignments=assignments or [],
            balance=balance,
            account=account,
            lots=lots,
            risk_percent=risk_percent,
            spread=spread,
            commission=commission,
            leverage=leverage,
        )
        folder = out or commands.default_out(settings, spec, bool(sweep))
        if sweep:
            commands.backtest_sweep(
                spec,
                catalogue,
                sweep,
                folder,
                console,
                workers=workers,
                metric=metric,
                robots_dir=robots_folder(settings.data_dir),
            )
        else:
            commands.backtest_once(spec, catalogue, folder, console)
    except MtrobotError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None


LATER_BENCHMARKS: dict[str, str] = {}
"""Benchmarks named in DESIGN 6 but not built yet: refused by name rather than faked (none left)."""


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help=", ".join(sorted(BENCHMARKS)))],
    orders: Annotated[int, typer.Option(min=1, max=1_000_000, help="orders to measure")] = 200,
    warmup: Annotated[int, typer.Option(min=0, max=10_000, help="orders sent before measuring")] = 20,
    seconds: Annotated[
        float | None,
        typer.Option(min=1, max=3600, help="throughput: run this long, not --orders; stream: each part (60)"),
    ] = None,
    connectors: Annotated[
        int, typer.Option(min=0, max=500, help="throughput, burst: connector processes (0: 1, burst 50)")
    ] = 0,
    rounds: Annotated[
        int, typer.Option(min=1, max=1000, help="burst: simultaneous rounds; books: saves")
    ] = 5,
    pause: Annotated[
        float, typer.Option(min=0, max=60, help="burst: seconds the platform rests before each round")
    ] = 0.0,
    rate_limit: Annotated[
        int | None,
        typer.Option(
            min=0, help="simulator order_send/s per session (100; 0: latency, one-connector throughput)"
        ),
    ] = None,
    profile: Annotated[bool, typer.Option(help="sample a connector with py-spy: top functions")] = False,
    floor_samples: Annotated[int, typer.Option(min=10, max=10_000, help="samples of each bare cost")] = 300,
    bars: Annotated[int, typer.Option(min=100, max=6_000, help="H1 bars of a backtest")] = 5_000,
    runs: Annotated[int, typer.Option(min=1, max=20, help="backtest runs (the median is reported)")] = 3,
    rate: Annotated[int, typer.Option(min=1, max=10_000, help="stream: raw events a second in")] = 100,
    clients: Annotated[int, typer.Option(min=1, max=20_000, help="stream: WebSocket clients")] = 1000,
    traders: Annotated[int, typer.Option(min=1, max=1000, help="stream: traders the clients belong to")] = 10,
    agents: Annotated[int, typer.Option(min=1, max=2_000, help="agents of density / storm")] = 50,
    hold: Annotated[float, typer.Option(min=0, max=3_600, help="density: seconds agents idle")] = 60.0,
    window: Annotated[float, typer.Option(min=0.5, max=600, help="storm: maintenance seconds")] = 5.0,
    timeout: Annotated[float, typer.Option(min=5, max=7_200, help="density / storm: bound")] = 600.0,
) -> None:
    """Measure a hot path on a throw-away embedded platform; one JSON line per result on stdout."""
    if name in LATER_BENCHMARKS:
        typer.secho(f"error: bench {name} needs {LATER_BENCHMARKS[name]}, which is not built yet", err=True)
        raise typer.Exit(2)
    if name not in BENCHMARKS:
        typer.secho(f"error: unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}", err=True)
        raise typer.Exit(2)
    configure_logging(level="WARNING", service="bench")

    async def _run() -> int:
        if name == "backtest":
            from mtrobot.bench.backtest import run_backtest_benchmark

            results = await run_backtest_benchmark(bars, runs)
        elif name == "stream":
            from mtrobot.bench.stream import run_stream_benchmark

            results = await run_stream_benchmark(seconds or 60.0, rate, clients, min(traders, clients))
        elif name == "books":
            from mtrobot.bench.books import BETWEEN_SAVES, run_books_benchmark
            from mtrobot.bench.progress import progress_bar

            with progress_bar() as progress:
                results = [await run_books_benchmark(orders, rounds, BETWEEN_SAVES, progress)]
        elif name in ("density", "storm"):
            from mtrobot.bench.density import measure_density, measure_storm
            from mtrobot.bench.progress import progress_bar

            with progress_bar() as progress:
                if name == "density":
                    results = [await measure_density(agents, hold, timeout, progress)]
                else:
                    results = [await measure_storm(agents, window, timeout, progress)]
        else:
            from mtrobot.bench.orders import order_progress, run_order_benchmark
            from mtrobot.bench.profile import format_top
            from mtrobot.bench.progress import progress_bar

            with progress_bar() as update:
                result = await run_order_benchmark(
                    name, orders=orders, warmup=warmup, seconds=seconds, rounds=rounds, pause_s=pause,
                    rate_limit=rate_limit, connectors=connectors or (50 if name == "burst" else 1),
                    profile=profile, progress=order_progress(update, f"bench {name}"),
                    floor_samples=floor_samples,
                )  # fmt: skip
            if result.get("profile_top"):
                typer.echo(format_top(result["profile_top"], "connector"), err=True)
            results = [result]
        for result in results:
            print(json.dumps(result), flush=True)
        return 0

    # stream: the aggregator measured here runs on the agents' loop
    raise typer.Exit(run_async(_run(), fast_loop=name == "stream"))


def main() -> None:
    app()
