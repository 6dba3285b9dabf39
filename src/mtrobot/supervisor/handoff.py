"""Handing an agent its broker credentials without the supervisor ever seeing the password.

The supervisor holds the master key; the agent must not (with it, one compromised agent could open every
account's password). So the supervisor unwraps only the account's data key and sends it with the sealed
record on the agent's standard input; the agent opens the record itself, bound to its own account id
(DESIGN.md section 4: plaintext exists only in that account's agent).

The agent's line (PLAN.md "Agent hand-off") also carries what the agent may not read for itself: the
account's backend, its bus identity (``bus``: creds and inbox prefix, ``null`` until the bus issues
per-agent identities), its portfolio as the database has it, and the state of its trading gate as the
database records it (``control``: running, paused by the trader, or quarantined; the database is the
authority, so a kill switch pulled while the agent was down holds when it starts).
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any

from mtrobot.core.errors import ConfigError
from mtrobot.logging import get_logger
from mtrobot.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class AgentRecord:
    """What the supervisor reads of one account to run its agent (no secret here)."""

    account: str
    login: int
    server: str
    backend: str
    agent_state: str
    agent_reason: str
    portfolio: dict[str, Any] | None


def _read_handoff(settings: Settings, account: str) -> dict[str, Any] | None:
    from mtrobot.storage import accounts as account_repo
    from mtrobot.storage.db import one_off_session
    from mtrobot.vault import SealedSecret, Vault, load_keyring

    try:
        with one_off_session(settings.resolved_database_url) as db:
            row = account_repo.account_by_id(db, account)
            if row is None:
                return None
            cols = account_repo.sealed_of(row)
            server, login = str(row.server), int(row.login)
        record = SealedSecret(cols.key_id, cols.wrapped_key, cols.nonce, cols.ciphertext)
        data_key = Vault(load_keyring(settings, create=False)).unwrap_data_key(record)
    except Exception as exc:  # no database, table, row or key yet: not ready
        log.info("account credentials not readable yet", account=account, error=type(exc).__name__)
        return None
    return {
        "handoff": {"record": record.to_dict(), "data_key": base64.b64encode(data_key).decode()},
        "login": login,
        "server": server,
    }


async def credentials_handoff(settings: Settings, account: str, wait_s: float = 180.0) -> bytes:
    """One JSON line for a connector's stdin; waits up to ``wait_s`` for the account to be stored."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while (found := await asyncio.to_thread(_read_handoff, settings, account)) is None:
        if loop.time() > deadline:
            raise ConfigError(f"account {account!r} has no stored credentials after {wait_s:.0f} s")
        await asyncio.sleep(0.5)
    return json.dumps(found).encode() + b"\n"


def agent_handoff(
    settings: Settings, record: AgentRecord, bus: dict[str, str | None] | None = None
) -> bytes | None:
    """The agent's stdin line, or ``None`` if the account's credentials cannot be read (yet)."""
    found = _read_handoff(settings, record.account)
    if found is None or found["login"] != record.login or found["server"] != record.server:
        return None  # removed or replaced meanwhile: the next round decides again
    gate = record.agent_state if record.agent_state in ("paused", "quarantined") else "running"
    control = {"state": gate, "reason": record.agent_reason}
    line = found | {
        "backend": record.backend,
        "bus": bus or {"creds": None, "inbox_prefix": None},
        "portfolio": record.portfolio,
        "control": control,
    }
    return json.dumps(line).encode() + b"\n"
