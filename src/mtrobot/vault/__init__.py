"""Envelope encryption of broker credentials: AES-GCM under a per-record data key wrapped by a master key."""

from mtrobot.vault.envelope import SealedSecret, Vault, VaultError, open_with_data_key
from mtrobot.vault.keys import Keyring, MasterKey, load_keyring

__all__ = [
    "Keyring",
    "MasterKey",
    "SealedSecret",
    "Vault",
    "VaultError",
    "load_keyring",
    "open_with_data_key",
]
