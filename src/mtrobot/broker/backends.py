"""Open a :class:`~mtrobot.broker.terminal.Terminal` by backend name.

Backends are resolved lazily with importlib from ``"module:attr"`` strings, so this package never imports
the simulator, the ``MetaTrader5`` package or ``mt5linux`` statically (the layering forbids the first, and
the others only exist on some machines). Each attr is a callable ``(**options) -> Terminal``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, cast

from mtrobot.broker.terminal import Terminal
from mtrobot.core.errors import ConfigError

BACKENDS: dict[str, str] = {
    "sim": "mtrobot.broker.simclient:open_sim_terminal",
    "sim-inprocess": "mtrobot.sim.inprocess:open_inprocess_terminal",
    "metatrader5": "mtrobot.broker.metatrader5:open_terminal",
    "mt5linux": "mtrobot.broker.mt5linux:open_terminal",
}
"""Backend name -> ``"module:callable"``. The real-terminal modules are added by their own part."""
REAL_BACKENDS = ("metatrader5", "mt5linux")
"""The backends of a real MT5 terminal (here, not in :mod:`.conformance`, whose numpy the connector's
command would load only to read these names: ~10 MB of every stand-alone connector)."""


class UnknownBackend(ConfigError):
    """The backend name is not one of :data:`BACKENDS`, or its module is not installed."""


def known_backends() -> list[str]:
    return sorted(BACKENDS)


def resolve_backend(backend: str) -> Callable[..., Terminal]:
    """Import the factory of ``backend``; a clear :class:`UnknownBackend` if it is unknown or unavailable."""
    target = BACKENDS.get(backend)
    if target is None:
        raise UnknownBackend(
            f"unknown MT5 backend {backend!r}; known backends: {', '.join(known_backends())}"
        )
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UnknownBackend(
            f"MT5 backend {backend!r} is not available here ({exc.name} is missing)"
        ) from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UnknownBackend(f"MT5 backend {backend!r}: {target} is not a terminal factory")
    return cast(Callable[..., Terminal], factory)


def open_terminal(backend: str, **options: Any) -> Terminal:
    """A new, not yet initialised terminal of ``backend`` built with ``options`` (backend specific: host and
    port for ``sim``, the broker object for ``sim-inprocess``, the terminal path for ``metatrader5``...)."""
    return resolve_backend(backend)(**options)


def backend_options(
    backend: str,
    *,
    terminal_path: str | None = None,
    portable: bool = False,
    bridge_host: str = "127.0.0.1",
    bridge_port: int = 18812,
) -> dict[str, Any]:
    """``open_terminal`` options for a real backend, from the fields of ``connector.{account}``'s
    ``mt5_connection`` (terminal_path, portable, bridge_host, bridge_port)."""
    if backend == "metatrader5":
        return {"path": terminal_path, "portable": portable}
    if backend == "mt5linux":
        return {"host": bridge_host, "port": bridge_port}
    raise ValueError(f"backend must be one of {', '.join(REAL_BACKENDS)}, not {backend!r}")
