"""Options of the web part that are not platform-wide settings (those live in ``mtrobot.settings``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class ServerInfo:
    """A broker trade server a trader may connect to, and how the platform reaches it."""

    name: str
    backend: str = "sim"
    company: str = ""
    options: tuple[tuple[str, str | int], ...] = ()


@dataclass(frozen=True)
class WebOptions:
    cookie_secure: bool = True
    """Browsers send Secure cookies to https:// origins and to http://localhost; keep it on."""
    session_ttl: timedelta = timedelta(days=7)
    session_idle: timedelta = timedelta(hours=12)
    login_limit: int = 5
    """Failed logins per e-mail (and per client address, times four) before a lock."""
    login_window: timedelta = timedelta(minutes=15)
    """A key with ``login_limit`` failures is refused until its window (from its first failure) ends."""
    register_limit: int = 10
    """Registrations per client address per ``register_window``."""
    register_window: timedelta = timedelta(hours=1)
    probe_limit_trader: int = 10
    """Connection tests per trader per ``probe_window`` (each starts a login at a broker)."""
    probe_limit_login: int = 5
    """Failed connection tests per broker login (server + login) per ``probe_window``, whoever tries."""
    probe_window: timedelta = timedelta(minutes=15)
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks of reverse proxies whose ``X-Forwarded-For`` is believed; none by default."""
    max_body_bytes: int = 1024 * 1024
    """Larger request bodies are refused with 413 before they are read."""
    probe_timeout_s: float = 20.0
    bus_timeout_s: float = 3.0
    extra_servers: tuple[ServerInfo, ...] = ()
    """Real broker servers the operator allows, besides the simulator's."""
    migrate: bool = True
    listen_to_bus: bool = True
    """Turn broker events into order states and activity lines (a queue group shares the work)."""
    extra_probe_env: tuple[tuple[str, str], ...] = field(default=())
    demo: bool = False
    """Create (or re-open) the demo trader and its simulated account once the simulator is up."""
    demo_wait_s: float = 120.0
    stream_recheck_s: float = 10.0
    """How often an open live stream re-checks its caller (signed out? an account added or removed?)."""
