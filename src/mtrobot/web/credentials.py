"""Between the vault and the store: sealing an account's password into its row, and key rotation.

Rotation re-wraps only the small data keys, never the ciphertexts, so it is quick and safe to run while the
platform serves: (1) a new master key becomes current and the old one stays readable; (2) every record is
re-wrapped under the new key with a compare-and-set per row; (3) once no row uses an old key any more, the
old key is retired (key file) or the operator drops it from ``MTROBOT_MASTER_KEY``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from mtrobot.core.errors import FatalError
from mtrobot.logging import get_logger
from mtrobot.storage import accounts as account_repo
from mtrobot.storage.accounts import SealedColumns
from mtrobot.storage.models import Mt5Account
from mtrobot.vault import MasterKey, SealedSecret, Vault

log = get_logger(__name__)


def to_columns(sealed: SealedSecret) -> SealedColumns:
    return SealedColumns(sealed.key_id, sealed.wrapped_key, sealed.nonce, sealed.ciphertext)


def sealed_of(account: Mt5Account) -> SealedSecret:
    cols = account_repo.sealed_of(account)
    return SealedSecret(cols.key_id, cols.wrapped_key, cols.nonce, cols.ciphertext)


@dataclass(frozen=True)
class RotationReport:
    new_key_id: str
    rewrapped: int
    retired_key_ids: tuple[str, ...]
    kept_key_ids: tuple[str, ...]


def rewrap_all(vault: Vault, sessions: sessionmaker[Session], batch: int = 100) -> int:
    """Re-wrap every record not yet under the current key; returns how many rows changed."""
    current = vault.keyring.current.key_id
    done = 0
    while True:
        with sessions.begin() as db:
            rows = account_repo.accounts_not_on_key(db, current, batch)
            if not rows:
                return done
            for row in rows:
                record = sealed_of(row)
                fresh = vault.rewrap(record)
                if account_repo.replace_wrapped_key(
                    db, row.id, record.key_id, fresh.key_id, fresh.wrapped_key
                ):
                    done += 1


def rotate_master_key(vault: Vault, sessions: sessionmaker[Session]) -> RotationReport:
    """Make a new master key current (key file only), re-wrap everything, retire the old keys.

    With ``MTROBOT_MASTER_KEY`` the operator supplies the keys (``NEW,OLD``); then this re-wraps under the
    first and reports which keys are no longer used, so they can be dropped from the variable.
    """
    ring = vault.keyring
    if ring.path is not None:
        ring.keys = [MasterKey.generate(), *ring.keys]
        ring.save()
    new_id = ring.current.key_id
    count = rewrap_all(vault, sessions)
    with sessions() as db:
        in_use = account_repo.key_ids_in_use(db)
    stale = tuple(k.key_id for k in ring.keys[1:] if k.key_id not in in_use)
    kept = tuple(k.key_id for k in ring.keys[1:] if k.key_id in in_use)
    if kept:
        raise FatalError(f"rows still use keys {', '.join(kept)} after re-wrapping; run the rotation again")
    if ring.path is not None:
        ring.keys = [ring.keys[0]]
        ring.save()
    log.info("master key rotated", new_key=new_id, rewrapped=count, retired=list(stale))
    return RotationReport(new_id, count, stale, kept)
