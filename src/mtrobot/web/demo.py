"""The demo tenant of ``mtrobot up``: a trader with one simulated account and an active portfolio.

``ensure_demo`` is idempotent. The platform account id is always ``demo`` so other parts can agree on it.
The simulator keeps its accounts in memory, so on a later start the demo account's MT5 login is opened again
at the simulator (same login, a fresh password, sealed again); the trader's login never changes and lives in
``DATA_DIR/demo-login.json`` (mode 0600) so ``mtrobot up`` can print it every time.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from mtrobot.logging import get_logger
from mtrobot.settings import Settings
from mtrobot.sim.admin import SimAdmin
from mtrobot.storage import accounts as account_repo
from mtrobot.storage import traders as trader_repo
from mtrobot.storage.db import make_engine, session_factory, upgrade_head
from mtrobot.vault import Vault, load_keyring
from mtrobot.web.credentials import to_columns
from mtrobot.web.security import hash_password, new_id
from mtrobot.web.servers import simbroker_file

log = get_logger(__name__)

DEMO_ACCOUNT_ID = "demo"
DEMO_EMAIL = "demo@mtrobot.local"
DEMO_LOGIN_FILE = "demo-login.json"
DEMO_ROBOTS: tuple[dict[str, Any], ...] = (
    {
        "robot": "ma_cross",
        "symbol": "EURUSD",
        "enabled": True,
        "timeframe": "H1",
        "params": {"fast": 10, "slow": 30},
        "sizing": {"mode": "fixed_lots", "lots": 0.01},
    },
)
"""The demo portfolio: the built-in ``ma_cross`` on EURUSD H1 with 0.01 lots (mtrobot.robots)."""


class SimAdminLike(Protocol):
    """What the demo needs of the simulator's admin channel (``mtrobot.sim.admin.SimAdmin``)."""

    async def create_account(self, **kwargs: Any) -> int: ...

    async def account_state(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str


def demo_login(settings: Settings) -> DemoLogin:
    """The demo trader's sign-in, created once (random password) and kept in the data dir."""
    path = settings.data_dir / DEMO_LOGIN_FILE
    if not path.exists():
        settings.ensure_dirs()
        data = {"email": DEMO_EMAIL, "password": secrets.token_urlsafe(12)}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
    data = json.loads(path.read_text())
    return DemoLogin(str(data["email"]), str(data["password"]))


def _sim_server(settings: Settings) -> str:
    info = json.loads(simbroker_file(settings).read_text())
    servers = info.get("servers") or []
    first = servers[0]
    return str(first["name"] if isinstance(first, dict) else first)


def _ensure_trader(sessions: sessionmaker[Session], login: DemoLogin) -> str:
    with sessions.begin() as db:
        trader = trader_repo.trader_by_email(db, login.email)
        if trader is None:
            trader = trader_repo.add_trader(
                db, new_id("trd_"), login.email, "Demo trader", hash_password(login.password)
            )
        return trader.id


async def _open_at_sim(admin: SimAdminLike, server: str, login: int | None) -> tuple[int, str]:
    password = secrets.token_urlsafe(12)
    kwargs: dict[str, Any] = {
        "server": server,
        "password": password,
        "investor_password": secrets.token_urlsafe(12),
        "balance": 10_000.0,
        "currency": "USD",
        "leverage": 100,
        "name": "Demo trader",
    }
    if login is not None:
        kwargs["login"] = login
    return await admin.create_account(**kwargs), password


async def _exists_at_sim(admin: SimAdminLike, login: int) -> bool:
    try:
        await admin.account_state(login=login)
    except Exception:
        return False
    return True


async def ensure_demo(
    settings: Settings,
    admin: SimAdminLike | None = None,
    *,
    sessions: sessionmaker[Session] | None = None,
    vault: Vault | None = None,
) -> str:
    """Make sure the demo trader, its simulated account ``demo`` and an active portfolio exist."""
    own_engine = None
    if sessions is None:
        upgrade_head(settings.resolved_database_url)
        own_engine = make_engine(settings.resolved_database_url)
        sessions = session_factory(own_engine)
    try:
        vault = vault or Vault(load_keyring(settings))
        if admin is None:
            admin = SimAdmin.from_run_file(simbroker_file(settings))
        trader_id = _ensure_trader(sessions, demo_login(settings))
        with sessions() as db:
            row = account_repo.account_by_id(db, DEMO_ACCOUNT_ID)
            existing = (row.server, row.login) if row is not None else None
        if existing is not None and await _exists_at_sim(admin, existing[1]):
            return DEMO_ACCOUNT_ID
        server = existing[0] if existing else _sim_server(settings)
        login, password = await _open_at_sim(admin, server, existing[1] if existing else None)
        sealed = to_columns(vault.seal(DEMO_ACCOUNT_ID, password))
        with sessions.begin() as db:
            row = account_repo.account_by_id(db, DEMO_ACCOUNT_ID)
            if row is None:
                account_repo.add_account(db, account_id=DEMO_ACCOUNT_ID, trader_id=trader_id, server=server,
                                         login=login, sealed=sealed, label="Demo account (simulated)",
                                         company="mtrobot simulator", currency="USD")  # fmt: skip
                account_repo.save_portfolio(db, DEMO_ACCOUNT_ID, True, [dict(r) for r in DEMO_ROBOTS])
            else:
                account_repo.replace_credential(db, DEMO_ACCOUNT_ID, sealed)
        log.info("demo account ready", account=DEMO_ACCOUNT_ID, server=server, login=login)
        return DEMO_ACCOUNT_ID
    finally:
        if own_engine is not None:
            own_engine.dispose()
