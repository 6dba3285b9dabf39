"""Broker credentials for a connector: from stdin/``MT5_PASSWORD`` (see :mod:`.runner`), or from the vault.

The vault route is what an account's own process uses inside the platform: the sealed password is read from
the account's row and opened here, in the only process that needs it (DESIGN.md 4). The row may not exist
yet when the process starts (``mtrobot up`` creates the demo account once the simulator is up), so reading
waits for it; and the password may be replaced later (the simulator's demo account is re-opened with a fresh
password on every start), so the session asks again after a refused login.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pydantic import SecretStr

from mtrobot.core.errors import ConfigError
from mtrobot.logging import get_logger
from mtrobot.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Credentials:
    password: SecretStr
    login: int | None = None
    server: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(login={self.login}, server={self.server!r}, password=**********)"


def _read_vault(settings: Settings, account: str) -> Credentials | None:
    from mtrobot.storage import accounts as account_repo
    from mtrobot.storage.db import make_engine, session_factory
    from mtrobot.vault import SealedSecret, Vault, load_keyring

    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as db:
            row = account_repo.account_by_id(db, account)
            if row is None:
                return None
            cols = account_repo.sealed_of(row)
            server, login = row.server, row.login
        record = SealedSecret(cols.key_id, cols.wrapped_key, cols.nonce, cols.ciphertext)
        password = Vault(load_keyring(settings, create=False)).open(account, record)
        return Credentials(SecretStr(password), int(login), str(server))
    except Exception as exc:  # no database yet, no table yet, no key yet: not ready
        log.info("vault credentials not readable yet", account=account, error=type(exc).__name__)
        return None
    finally:
        engine.dispose()


async def vault_credentials(settings: Settings, account: str, wait_s: float = 180.0) -> Credentials:
    """The account's login, server and opened password; waits up to ``wait_s`` for the account to exist."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        found = await asyncio.to_thread(_read_vault, settings, account)
        if found is not None:
            return found
        if loop.time() > deadline:
            raise ConfigError(f"account {account!r} has no stored credentials after {wait_s:.0f} s")
        await asyncio.sleep(1.0)
