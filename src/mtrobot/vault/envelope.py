"""Sealing and opening secrets.

Each record gets its own random 256-bit data key. The secret is encrypted with AES-GCM under that data key,
with the account id as associated data, so a ciphertext copied to another account's row fails to open. The
data key is itself encrypted (wrapped) with AES-GCM under the current master key.

The split between :meth:`Vault.unwrap_data_key` (needs the master key) and :func:`open_with_data_key`
(needs no master key) lets a supervisor hand an agent what it needs to decrypt its own password without the
supervisor ever seeing the password: the plaintext exists only in the agent.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mtrobot.core.errors import FatalError
from mtrobot.vault.keys import Keyring

NONCE_BYTES = 12
DATA_KEY_BYTES = 32
_WRAP_CONTEXT = b"mtrobot/vault/data-key/v1"
_SEAL_CONTEXT = b"mtrobot/vault/secret/v1|"


class VaultError(FatalError):
    """A record cannot be opened: wrong account, tampered, or its master key is gone."""


@dataclass(frozen=True, repr=False)
class SealedSecret:
    """What is stored: the id of the wrapping master key, the wrapped data key, the nonce and ciphertext."""

    key_id: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"SealedSecret(key_id={self.key_id}, {len(self.ciphertext)} bytes)"

    def to_dict(self) -> dict[str, str]:
        """A JSON-safe form, for handing a record to another process."""
        b64 = base64.b64encode
        return {
            "key_id": self.key_id,
            "wrapped_key": b64(self.wrapped_key).decode(),
            "nonce": b64(self.nonce).decode(),
            "ciphertext": b64(self.ciphertext).decode(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SealedSecret:
        try:
            return cls(
                key_id=str(data["key_id"]),
                wrapped_key=base64.b64decode(data["wrapped_key"], validate=True),
                nonce=base64.b64decode(data["nonce"], validate=True),
                ciphertext=base64.b64decode(data["ciphertext"], validate=True),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise VaultError(f"not a sealed record: {exc}") from None


def _seal_aad(account_id: str) -> bytes:
    return _SEAL_CONTEXT + account_id.encode()


def _wrap_aad(key_id: str) -> bytes:
    return _WRAP_CONTEXT + b"|" + key_id.encode()


def open_with_data_key(data_key: bytes, record: SealedSecret, account_id: str) -> str:
    """Decrypt ``record`` with an unwrapped data key; fails unless it was sealed for ``account_id``."""
    try:
        plain = AESGCM(data_key).decrypt(record.nonce, record.ciphertext, _seal_aad(account_id))
    except (InvalidTag, ValueError):
        raise VaultError(f"the credential does not belong to account {account_id} or was altered") from None
    return plain.decode()


class Vault:
    """Seal, open and re-wrap records under a :class:`Keyring`."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def seal(self, account_id: str, plaintext: str) -> SealedSecret:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext.encode(), _seal_aad(account_id))
        master = self.keyring.current
        return SealedSecret(master.key_id, self._wrap(data_key, master.key_id), nonce, ciphertext)

    def open(self, account_id: str, record: SealedSecret) -> str:
        return open_with_data_key(self.unwrap_data_key(record), record, account_id)

    def unwrap_data_key(self, record: SealedSecret) -> bytes:
        """The record's data key; the caller passes it on and never decrypts the secret itself."""
        master = self.keyring.find(record.key_id)
        if master is None:
            raise VaultError(f"master key {record.key_id} is not in the keyring (was it retired too early?)")
        wrapped = record.wrapped_key
        try:
            return AESGCM(master.material).decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_aad(record.key_id)
            )
        except InvalidTag:
            raise VaultError("the data key does not open under its master key (tampered?)") from None

    def rewrap(self, record: SealedSecret) -> SealedSecret:
        """The same secret with its data key wrapped under the current master key; the ciphertext is kept."""
        current = self.keyring.current
        if record.key_id == current.key_id:
            return record
        data_key = self.unwrap_data_key(record)
        return SealedSecret(
            current.key_id, self._wrap(data_key, current.key_id), record.nonce, record.ciphertext
        )

    def _wrap(self, data_key: bytes, key_id: str) -> bytes:
        master = self.keyring.find(key_id)
        if master is None:  # pragma: no cover - key_id always comes from the keyring itself
            raise VaultError(f"master key {key_id} vanished from the keyring")
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + AESGCM(master.material).encrypt(nonce, data_key, _wrap_aad(key_id))
