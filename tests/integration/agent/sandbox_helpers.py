"""Accounts for the sandbox and quarantine tests: any number of them (a trader has at most three), with the
password kept to look for it later."""

from __future__ import annotations

import secrets

from mtrobot.storage import accounts as account_repo
from mtrobot.storage import traders as trader_repo
from mtrobot.web.credentials import to_columns
from tests.integration.agent.agents import Platform


async def connect_with_password(platform: Platform, trader_id: str | None = None) -> tuple[str, str]:
    """A new account at the simulator, stored as the web stores one, for ``trader_id`` (default: a new
    trader of its own); returns (account id, password)."""
    if trader_id is None:
        trader_id = f"trd_{secrets.token_hex(4)}"
        with platform.sessions.begin() as db:
            trader_repo.add_trader(db, trader_id, f"{trader_id}@example.com", "T", "x")
    password = "pw-" + secrets.token_hex(12)
    server = platform.sim.servers[0]
    login = await platform.sim.admin().create_account(
        server=server, password=password, investor_password=secrets.token_urlsafe(12),
        balance=100_000.0, currency="USD", leverage=100, name="sandbox test",
    )  # fmt: skip
    account = f"acct-{secrets.token_hex(4)}"
    sealed = to_columns(platform.vault.seal(account, password))
    with platform.sessions.begin() as db:
        account_repo.add_account(db, account_id=account, trader_id=trader_id, server=server,
                                 login=login, sealed=sealed)  # fmt: skip
    return account, password
