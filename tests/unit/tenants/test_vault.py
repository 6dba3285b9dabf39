from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path

import pytest

from mtrobot.core.errors import ConfigError, FatalError
from mtrobot.settings import Settings
from mtrobot.vault import (
    Keyring,
    MasterKey,
    SealedSecret,
    Vault,
    VaultError,
    load_keyring,
    open_with_data_key,
)


def env_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def test_a_sealed_password_opens_for_its_account_only(data_dir: Path) -> None:
    vault = Vault(load_keyring(Settings(data_dir=data_dir)))
    sealed = vault.seal("acct-a", "hunter2-master")
    assert vault.open("acct-a", sealed) == "hunter2-master"
    assert b"hunter2" not in sealed.ciphertext + sealed.wrapped_key
    with pytest.raises(VaultError):
        vault.open("acct-b", sealed)


def test_ciphertexts_swapped_between_two_accounts_fail_to_decrypt(data_dir: Path) -> None:
    vault = Vault(load_keyring(Settings(data_dir=data_dir)))
    a, b = vault.seal("acct-a", "password-a"), vault.seal("acct-b", "password-b")
    with pytest.raises(VaultError):
        vault.open("acct-a", b)
    with pytest.raises(VaultError):
        vault.open("acct-b", a)
    # Only the payload moved, the data key stayed: still refused.
    mixed = SealedSecret(a.key_id, a.wrapped_key, b.nonce, b.ciphertext)
    with pytest.raises(VaultError):
        vault.open("acct-a", mixed)


def test_the_agent_opens_with_the_data_key_alone(data_dir: Path) -> None:
    vault = Vault(load_keyring(Settings(data_dir=data_dir)))
    record = SealedSecret.from_dict(vault.seal("acct-a", "pw").to_dict())
    data_key = vault.unwrap_data_key(record)
    assert open_with_data_key(data_key, record, "acct-a") == "pw"
    with pytest.raises(VaultError):
        open_with_data_key(data_key, record, "acct-x")


def test_a_tampered_wrapped_key_is_refused(data_dir: Path) -> None:
    vault = Vault(load_keyring(Settings(data_dir=data_dir)))
    s = vault.seal("acct-a", "pw")
    flipped = bytes([s.wrapped_key[-1] ^ 1])
    with pytest.raises(VaultError):
        vault.open("acct-a", SealedSecret(s.key_id, s.wrapped_key[:-1] + flipped, s.nonce, s.ciphertext))


def test_the_key_file_is_created_once_with_mode_0600(data_dir: Path) -> None:
    first = load_keyring(Settings(data_dir=data_dir))
    path = data_dir / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keyring(Settings(data_dir=data_dir)).current.key_id == first.current.key_id


def test_a_key_file_readable_by_others_is_refused(data_dir: Path) -> None:
    load_keyring(Settings(data_dir=data_dir))
    os.chmod(data_dir / "master.key", 0o644)
    with pytest.raises(FatalError, match="chmod 600"):
        load_keyring(Settings(data_dir=data_dir))


def test_a_master_key_from_the_environment_is_used_and_a_placeholder_refused(data_dir: Path) -> None:
    key = env_key()
    ring = load_keyring(Settings(data_dir=data_dir, master_key=key))
    assert ring.current.encoded().rstrip("=") == key.replace("+", "-").replace("/", "_").rstrip("=")
    assert not (data_dir / "master.key").exists()
    with pytest.raises(ConfigError, match="MTROBOT_MASTER_KEY"):
        load_keyring(Settings(data_dir=data_dir, master_key=base64.b64encode(b"\0" * 32).decode()))
    with pytest.raises(ConfigError, match="32 bytes"):
        load_keyring(Settings(data_dir=data_dir, master_key=base64.b64encode(b"short").decode()))


def test_rewrapping_moves_a_record_to_the_new_key_and_keeps_it_readable() -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    before = Vault(Keyring([old]))
    sealed = before.seal("acct-a", "pw")
    during = Vault(Keyring([new, old]))
    fresh = during.rewrap(sealed)
    assert fresh.key_id == new.key_id and fresh.ciphertext == sealed.ciphertext
    assert during.open("acct-a", sealed) == during.open("acct-a", fresh) == "pw"
    after = Vault(Keyring([new]))
    assert after.open("acct-a", fresh) == "pw"
    with pytest.raises(VaultError, match="not in the keyring"):
        after.open("acct-a", sealed)


def test_a_running_vault_sees_a_key_file_rotated_by_another_process(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir)
    running = Vault(load_keyring(settings))
    operator = load_keyring(settings)
    operator.keys = [MasterKey.generate(), *operator.keys]
    operator.save()
    assert running.seal("acct-a", "pw").key_id == operator.keys[0].key_id


def test_master_keys_never_show_in_repr() -> None:
    key = MasterKey.generate()
    assert key.encoded() not in repr(key) and key.encoded() not in repr(Keyring([key]))
