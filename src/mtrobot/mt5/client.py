"""The blocking client behind :mod:`mtrobot.mt5`: one terminal, as the official module holds one.

Every function goes to the simulator through the ``sim`` terminal client (:mod:`mtrobot.broker.simclient`)
on an event loop in a thread of its own, arguments passed through untouched, so the server checks them as
the binding does and a wrong one is answered with ``None`` (``False`` for the bool functions) and
``last_error() == (-2, 'Invalid "<field>" argument')`` rather than a Python exception. What the official
module keeps on the client side stays here: the RES_* pair of the last call, "No IPC connection" before
``initialize()`` and after ``shutdown()``, the account the terminal remembers, and the terminal's own folders.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from mtrobot.broker import constants as c
from mtrobot.broker.simclient import SimTerminal
from mtrobot.broker.structures import TerminalInfo
from mtrobot.mt5 import target as targets
from mtrobot.mt5.results import as_c_results
from mtrobot.settings import Settings

T = TypeVar("T")

SUCCESS = (c.RES_S_OK, "Success")
NO_IPC = (c.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
IPC_TIMEOUT = (c.RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout")
AUTH_FAILED = (c.RES_E_AUTH_FAILED, "Terminal: Authorization failed")
INIT_FAILED = c.RES_E_INTERNAL_FAIL_INIT
GRACE_S = 10.0

BOOL_FUNCTIONS = frozenset({"initialize", "login", "symbol_select", "market_book_add", "market_book_release"})
INT_FUNCTIONS = frozenset(
    {"symbols_total", "orders_total", "positions_total", "history_orders_total", "history_deals_total"}
)
_INITIALIZE_KINDS: dict[str, type | tuple[type, ...]] = {
    "path": str,
    "login": int,
    "password": str,
    "server": str,
    "timeout": int,
    "portable": bool,
}


_shared: list[asyncio.AbstractEventLoop] = []
_shared_lock = threading.Lock()


def shared_loop() -> asyncio.AbstractEventLoop:
    """The event loop (on a daemon thread) that drives every client of this process that was given none."""
    with _shared_lock:
        if not _shared:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="mtrobot-mt5-loop", daemon=True).start()
            _shared.append(loop)
        return _shared[0]


def failure_value(name: str) -> Any:
    """What a function returns when it fails: False, 0 for the counts, else None."""
    if name in BOOL_FUNCTIONS:
        return False
    return 0 if name in INT_FUNCTIONS else None


def _invalid(name: str) -> tuple[int, str]:
    return (c.RES_E_INVALID_PARAMS, f'Invalid "{name}" argument')


class Mt5Client:
    """One terminal session on the simulator, blocking, safe to call from any thread (calls are serialised,
    as the official module's pipe serialises them).

    - ``target``: see :mod:`mtrobot.mt5.target` (None: environment, then the platform's simbroker, then a
      private one); ``simulator`` overrides it with one already resolved;
    - ``loop``: an event loop running in another thread to drive the client on (default: one loop thread
      shared by this process's clients);
    - ``server``: where a demo account is opened when ``initialize()`` gets no login;
    - ``algo_trading``, ``tradeapi_disabled``: the terminal's two switches (MT5_REFERENCE.md section 9);
    - ``stand_in``: ``initialize()`` with the credentials of a server the simulator does not have (a
      script's real account) logs in to the demo account instead and says so on stderr; a simulated
      server's wrong password still fails.
    """

    def __init__(
        self,
        *,
        target: str | None = None,
        simulator: targets.Simulator | None = None,
        settings: Settings | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        server: str | None = None,
        login: int | None = None,
        algo_trading: bool = True,
        tradeapi_disabled: bool = False,
        call_timeout: float = 60.0,
        stand_in: bool = False,
    ) -> None:
        self._target = target
        self._sim = simulator
        self._settings = settings
        self._loop = loop
        self._default_server = server
        self._default_login = login
        self._switches = {"algo_trading": algo_trading, "tradeapi_disabled": tradeapi_disabled}
        self._call_timeout = call_timeout
        self._stand_in = stand_in
        self._terminal: SimTerminal | None = None
        self._stored: tuple[int, str, str] | None = None
        self._error: tuple[int, str] = SUCCESS
        self._guard = threading.RLock()
        self._folders: tempfile.TemporaryDirectory[str] | None = None

    # -- plumbing --------------------------------------------------------------------------------------
    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        if self._loop is None:
            self._loop = shared_loop()
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError from None

    def simulator(self) -> targets.Simulator:
        """The simulator this client attaches to (resolved on first use)."""
        if self._sim is None:
            self._sim = targets.resolve(self._target, self._settings)
        return self._sim

    def last_error(self) -> tuple[int, str]:
        return self._error

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The function ``name`` of the terminal with the caller's arguments as given."""
        failure = failure_value(name)
        with self._guard:
            terminal = self._terminal
            if terminal is None:
                self._error = NO_IPC
                return failure

            async def call_and_error() -> tuple[Any, tuple[int, str]]:
                result = await terminal.call_function(name, failure, *args, **kwargs)
                return result, await terminal.last_error()

            try:
                result, self._error = self._run(call_and_error(), self._call_timeout + GRACE_S)
            except TimeoutError:
                self._error = IPC_TIMEOUT
                return failure
            if name == "terminal_info" and result is not None:
                result = self._local_folders(result)
            return as_c_results(result)

    # -- connection ------------------------------------------------------------------------------------
    def initialize(self, *args: Any, **kwargs: Any) -> bool:
        with self._guard:
            refusal = _initialize_refusal(args, kwargs)
            if refusal is not None:
                self._error = refusal
                return False
            try:
                sim = self.simulator()
            except targets.TargetError as exc:
                self._error = (INIT_FAILED, f"IPC initialize failed, {exc}")
                return False
            path = args[0] if args else kwargs.pop("path", None)
            if self._terminal is None:
                self._terminal = SimTerminal(
                    sim.transport,
                    call_timeout=self._call_timeout,
                    algo_trading=self._switches["algo_trading"],
                    tradeapi_disabled=self._switches["tradeapi_disabled"],
                )
            timeout = int(kwargs.get("timeout", 60_000))
            try:
                return self._initialize(sim, path, kwargs, timeout)
            except TimeoutError:
                self._error = IPC_TIMEOUT
                return False

    def _initialize(self, sim: targets.Simulator, path: Any, kwargs: dict[str, Any], timeout: int) -> bool:
        login, password, server = kwargs.get("login"), kwargs.get("password"), kwargs.get("server")
        if self._stand_in and server is not None and sim.servers and server not in sim.servers:
            print(
                f"mtrobot mt5: {server!r} is not a simulated server: the demo account stands in for it",
                file=sys.stderr,
            )
            login = password = server = None
        automatic = login is None and password is None
        if automatic:
            login, password, server = self._stored_account(sim, server)
        elif password is None:
            password, server = self._remembered_password(sim, login, server)
        if automatic and login is None:
            try:
                login, password, server = self._demo_account(sim, server)
            except targets.TargetError:
                self._error = AUTH_FAILED
                return False
        ok = self._attach(path, login, password, server, kwargs, timeout)
        if not ok and automatic and self._error == AUTH_FAILED and sim.admin is not None:
            login, password, server = self._demo_account(sim, server)  # the remembered one is gone
            ok = self._attach(path, login, password, server, kwargs, timeout)
        if ok and login is not None and password is not None and server is not None:
            self._stored = (login, password, server)
        return ok

    def _attach(
        self,
        path: Any,
        login: int | None,
        password: str | None,
        server: str | None,
        kwargs: dict[str, Any],
        timeout: int,
    ) -> bool:
        terminal = self._terminal
        assert terminal is not None
        options = {k: v for k, v in kwargs.items() if k not in ("login", "password", "server", "timeout")}

        async def attach() -> tuple[bool, tuple[int, str]]:
            positional = () if path is None else (path,)
            ok = await terminal.initialize(
                *positional, login=login, password=password, server=server, timeout=timeout, **options
            )
            return ok, await terminal.last_error()

        ok, self._error = self._run(attach(), timeout / 1000 + self._call_timeout + GRACE_S)
        return ok

    def _stored_account(
        self, sim: targets.Simulator, server: str | None
    ) -> tuple[int | None, str | None, str | None]:
        """The account this terminal last logged in to, else a remembered demo account."""
        if self._stored is not None and server in (None, self._stored[2]):
            return self._stored
        server = server or self._default_server or (sim.servers[0] if sim.servers else None)
        if server is None:
            return None, None, None
        remembered = targets.remembered_accounts(sim).get(server)
        wanted = self._default_login
        if remembered and (wanted is None or remembered.get("login") == wanted):
            return int(remembered["login"]), str(remembered["password"]), server
        return None, None, server

    def _remembered_password(
        self, sim: targets.Simulator, login: int | None, server: str | None
    ) -> tuple[str | None, str | None]:
        if self._stored is not None and self._stored[0] == login:
            return self._stored[1], server or self._stored[2]
        for name, account in targets.remembered_accounts(sim).items():
            if account.get("login") == login and server in (None, name):
                return str(account["password"]), name
        return None, server

    def _demo_account(self, sim: targets.Simulator, server: str | None) -> tuple[int, str, str]:
        server = server or self._default_server or (sim.servers[0] if sim.servers else None)
        if server is None:
            raise targets.TargetError("no trade server known: pass server")
        login, password = self._run(targets.open_demo_account(sim, server), self._call_timeout)
        return login, password, server

    def login(self, *args: Any, **kwargs: Any) -> bool:
        with self._guard:
            if self._terminal is None:
                self._error = NO_IPC
                return False
            if args and "password" not in kwargs and isinstance(args[0], int):
                password, server = self._remembered_password(self.simulator(), args[0], kwargs.get("server"))
                if password is not None:
                    kwargs = {**kwargs, "password": password, "server": server}
            ok = bool(self.call("login", *args, **kwargs))
            if ok:
                current = self.call("account_info")
                if current is not None:
                    self._stored = (current.login, kwargs.get("password", ""), current.server)
                self._error = SUCCESS
            return ok

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        """Close the link only: the simulator keeps the account logged in for the next ``initialize()``."""
        with self._guard:
            terminal = self._terminal
            if terminal is not None:
                self._run(terminal.shutdown(), self._call_timeout + GRACE_S)
            self._error = SUCCESS

    # -- the terminal's own folders --------------------------------------------------------------------
    def _local_folders(self, info: TerminalInfo) -> TerminalInfo:
        """path / data_path / commondata_path: folders that exist on this machine, as a terminal's do."""
        sim = self.simulator()
        if sim.accounts_file is not None:
            root = sim.accounts_file.parent
        else:
            if self._folders is None:
                self._folders = tempfile.TemporaryDirectory(prefix="mtrobot-mt5-")
            root = Path(self._folders.name)
        data = root / "terminal"
        common = root / "common"
        for folder in (data / "MQL5" / "Files", common / "Files"):
            folder.mkdir(parents=True, exist_ok=True)
        return info._replace(path=str(data), data_path=str(data), commondata_path=str(common))


def _initialize_refusal(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int, str] | None:
    """The binding's own checks of initialize()'s arguments, before anything is attempted."""
    if len(args) > 1 or (args and "path" in kwargs):
        return (c.RES_E_INVALID_PARAMS, "Invalid number of arguments")
    if args and not isinstance(args[0], str):
        return _invalid("path")
    for key, value in kwargs.items():
        kind = _INITIALIZE_KINDS.get(key)
        if kind is None or not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return _invalid(key)
    return None
