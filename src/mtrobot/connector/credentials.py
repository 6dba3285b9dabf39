"""Broker credentials for a connector: a password (stdin or ``MT5_PASSWORD``, see :mod:`.runner`), or a
supervisor's hand-off.

A hand-off (:mod:`mtrobot.supervisor.handoff`) carries the account's sealed record and its unwrapped data key,
never the master key: the record is opened here, bound to this account's id, in the only process that needs
the password (DESIGN.md 4). If the broker later refuses the password (the stored one was replaced), this
process cannot read the vault again by design: it exits with :data:`EXIT_REHANDOFF` and its supervisor
starts it again with a fresh hand-off.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from mtrobot.core.errors import ConfigError

EXIT_REHANDOFF = 75
"""Exit code asking the supervisor for a fresh hand-off (EX_TEMPFAIL)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    password: SecretStr
    login: int | None = None
    server: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(login={self.login}, server={self.server!r}, password=**********)"


def open_handoff(account: str, message: dict[str, Any]) -> Credentials:
    """Open a supervisor's hand-off ``{"handoff": {"record", "data_key"}, "login", "server"}``."""
    from mtrobot.vault import SealedSecret, VaultError, open_with_data_key

    try:
        handoff = message["handoff"]
        record = SealedSecret.from_dict(handoff["record"])
        data_key = base64.b64decode(handoff["data_key"], validate=True)
        password = open_with_data_key(data_key, record, account)
    except (KeyError, TypeError, ValueError, binascii.Error, VaultError) as exc:
        raise ConfigError(f"the credentials hand-off for account {account!r} cannot be opened") from exc
    login = message.get("login")
    return Credentials(SecretStr(password), int(login) if login else None, message.get("server"))
