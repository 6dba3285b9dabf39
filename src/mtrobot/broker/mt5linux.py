"""The ``mt5linux`` backend: a terminal under Wine, reached through an mt5linux bridge server over rpyc.

On the terminal's side runs the mt5linux server: Windows Python inside the same Wine prefix as
``terminal64.exe``, with ``MetaTrader5`` and ``rpyc``, serving an rpyc *classic* session (``python -m
mt5linux`` in mt5linux 1.1.1 is ``rpyc_classic``'s ``ClassicServer``; ``mt5server.exe -p PORT`` is the same
thing frozen into one file). This module is the client side, and it speaks that protocol directly with
``rpyc`` (``pip install 'mtrobot[mt5linux]'``) instead of using mt5linux's own client class, because that
class (1.1.1) insists on managing a docker/udocker container, copies results by pickling them (the C result
types cannot be pickled: mt5linux #57), pastes ``datetime`` arguments into source strings (#3, #21) and, in
its typed variant, reorders fields. Instead, a small helper (:mod:`mtrobot.broker.mt5linux_remote`) is sent
once per connection and turns every result into plain tuples server-side, named by the module itself.

The client exposes nothing to the server (rpyc ``ClassicClient``). The classic server, however, runs any
code for whoever reaches its port: keep it on loopback, or behind an SSH tunnel, never on an open network.

Link loss keeps the official module's codes, so the connector's reconnect path is the same as for a local
terminal: not connected → -10004 (the call was not made), lost mid-call → -10002, no answer in time →
-10005 (both: for ``order_send`` the request may have executed). ``initialize()`` reconnects.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from mtrobot.broker.backends import UnknownBackend
from mtrobot.broker.results import MalformedResult
from mtrobot.broker.threaded import INITIALIZE_GRACE_S, LinkLost, ThreadedTerminal
from mtrobot.broker.worker import WorkerThread
from mtrobot.logging import get_logger

log = get_logger(__name__)

DEFAULT_PORT = 18812
"""mt5linux's default RPyC port."""
IPC_SEND = -10001
IPC_RECEIVE = -10002
IPC_INIT = -10003
NO_IPC = -10004
IPC_TIMEOUT = -10005
REMOTE_HELPER = Path(__file__).with_name("mt5linux_remote.py")
TRADE_FUNCTIONS = frozenset({"order_send", "order_check"})
LINK_ERRORS: tuple[type[BaseException], ...] = (EOFError, ConnectionError, OSError)
"""What rpyc raises when the socket dies (``TimeoutError`` is an ``OSError`` too: checked first)."""


def import_rpyc() -> Any:
    try:
        return importlib.import_module("rpyc")
    except ModuleNotFoundError as exc:
        raise UnknownBackend("MT5 backend 'mt5linux' needs rpyc: pip install 'mtrobot[mt5linux]'") from exc


class RpycBridge:
    """A :class:`~mtrobot.broker.threaded.BlockingApi` over one rpyc connection to an mt5linux server.

    Used only from its terminal's worker thread, so it needs no lock.
    """

    def __init__(self, host: str, port: int, *, connect_timeout: float, call_timeout: float) -> None:
        self.host, self.port = host, port
        self._connect_timeout = connect_timeout
        self._call_timeout = call_timeout
        self._rpyc = import_rpyc()
        self._conn: Any = None
        self._remote_call: Any = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def call(self, function: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
        if function == "shutdown" and not self.connected:
            return None, None  # like the module: shutting down a closed channel is no error
        if function == "initialize" and not self.connected:
            self._connect()
        if not self.connected:
            raise LinkLost(NO_IPC, f"not connected to the mt5linux bridge at {self.address} "
                           "(initialize() reconnects)")  # fmt: skip
        self._conn._config["sync_request_timeout"] = self._limit(function, kwargs)
        try:
            raw, error = self._remote_call(function, _wire_args(function, args), tuple(kwargs.items()))
        except TimeoutError as exc:
            self.close()
            raise LinkLost(IPC_TIMEOUT, f"the mt5linux bridge at {self.address} did not answer "
                           f"{function} in time") from exc  # fmt: skip
        except LINK_ERRORS as exc:
            self.close()
            raise LinkLost(IPC_RECEIVE, f"the connection to the mt5linux bridge at {self.address} was "
                           f"lost during {function}") from exc  # fmt: skip
        if function == "shutdown":
            self.close()
        return decode(raw), error

    def _limit(self, function: str, kwargs: dict[str, Any]) -> float:
        if function in ("initialize", "login"):
            return float(kwargs.get("timeout", 60000)) / 1000 + INITIALIZE_GRACE_S / 2
        return self._call_timeout

    def _connect(self) -> None:
        rpyc = self._rpyc
        try:
            stream = rpyc.SocketStream.connect(
                self.host, self.port, timeout=self._connect_timeout, nodelay=True, keepalive=True, attempts=1
            )
        except LINK_ERRORS as exc:
            raise LinkLost(NO_IPC, f"the mt5linux bridge at {self.address} cannot be reached "
                           f"({type(exc).__name__}); is its server running?") from exc  # fmt: skip
        config = {"sync_request_timeout": self._call_timeout, "allow_pickle": False}
        conn = rpyc.utils.factory.connect_stream(stream, rpyc.core.service.ClassicClient, config=config)
        try:
            conn.execute(REMOTE_HELPER.read_text(encoding="utf-8"))
            self._remote_call = conn.namespace["mtrobot_call"]
        except LINK_ERRORS as exc:
            conn.close()
            raise LinkLost(NO_IPC, f"the mt5linux bridge at {self.address} closed the connection while "
                           "it was being set up") from exc  # fmt: skip
        except Exception as exc:  # the remote Python refused the helper, e.g. no MetaTrader5 there
            conn.close()
            raise LinkLost(IPC_INIT, f"the bridge's Python at {self.address} cannot run MetaTrader5 "
                           f"({type(exc).__name__})") from exc  # fmt: skip
        self._conn = conn
        log.info("mt5linux_connected", bridge=self.address)

    def close(self) -> None:
        conn, self._conn, self._remote_call = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a dead link must not fail the caller
                log.debug("mt5linux_close_failed", bridge=self.address)


def _wire_args(function: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """A request dict becomes (key, value) pairs, which rpyc copies by value (a dict would be a proxy)."""
    if function in TRADE_FUNCTIONS and args and isinstance(args[0], dict):
        return (tuple(args[0].items()), *args[1:])
    return args


def decode(value: Any) -> Any:
    """Undo :func:`mtrobot.broker.mt5linux_remote.plain`: dicts for structures, arrays for arrays."""
    if not isinstance(value, tuple):
        return value
    tag = value[0] if value else None
    if tag == "struct":
        return {key: decode(item) for key, item in value[2]}
    if tag == "tuple":
        return tuple(decode(item) for item in value[1])
    if tag == "array":
        length, columns = value[1], value[2]
        out = np.zeros(length, dtype=[(name, kind) for name, kind, _ in columns])
        for name, kind, data in columns:
            out[name] = np.frombuffer(data, dtype=kind, count=length)
        return out
    raise MalformedResult(f"the mt5linux bridge returned an unexpected value tagged {tag!r}")


def open_terminal(
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    connect_timeout: float = 10.0,
    call_timeout: float = 90.0,
) -> ThreadedTerminal:
    """A terminal behind the mt5linux server at ``host:port`` (one server per terminal and account).

    Nothing connects until ``initialize()``. ``call_timeout`` bounds each call except ``initialize`` /
    ``login`` (their own ``timeout`` plus a grace).
    """
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be a TCP port number, got {port!r}")
    bridge = RpycBridge(host, port, connect_timeout=connect_timeout, call_timeout=call_timeout)
    return ThreadedTerminal(
        bridge,
        WorkerThread(f"mt5-mt5linux-{host}:{port}"),
        call_timeout=call_timeout + 5.0,
        owns_worker=True,
        label=f"mt5linux {host}:{port}",
    )
