"""Master keys: from ``MTROBOT_MASTER_KEY`` or from a key file created with mode 0600 in the data dir.

A keyring holds one *current* key (new records are sealed under it) and any number of older keys that can
still unwrap. That is what makes rotation free of downtime: while ``mtrobot keys rotate`` re-wraps the data
keys, both the old and the new key open every record. The key file is re-read whenever it changes on disk,
so a running process picks up a rotation without a restart.

``MTROBOT_MASTER_KEY`` holds one base64 key of 32 bytes, or several separated by commas (current first):
an operator who keeps the key outside the data dir rotates by deploying ``NEW,OLD``, running
``mtrobot keys rotate``, then deploying ``NEW`` alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mtrobot.core.errors import ConfigError, FatalError
from mtrobot.files import PRIVATE, write_atomically
from mtrobot.settings import Settings

KEY_BYTES = 32
KEY_FILE_NAME = "master.key"


@dataclass(frozen=True, repr=False)
class MasterKey:
    """A 256-bit key and its public id (a short keyed hash: it tells which key, never the key)."""

    material: bytes

    def __post_init__(self) -> None:
        if len(self.material) != KEY_BYTES:
            raise ConfigError(f"master key must be {KEY_BYTES} bytes, got {len(self.material)}")

    @property
    def key_id(self) -> str:
        return hashlib.blake2b(self.material, digest_size=8, person=b"mtrobot-keyid").hexdigest()

    def __repr__(self) -> str:
        return f"MasterKey(id={self.key_id})"

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    def encoded(self) -> str:
        return base64.urlsafe_b64encode(self.material).decode()


def parse_key(text: str, source: str) -> MasterKey:
    """One base64 (standard or URL-safe) key of 32 bytes; a placeholder or a short key is refused."""
    value = text.strip()
    try:
        material = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{source}: not base64 (expected 32 random bytes, base64-encoded)") from None
    if len(material) != KEY_BYTES:
        raise ConfigError(f"{source}: must decode to {KEY_BYTES} bytes, got {len(material)}")
    if len(set(material)) < 8:
        raise ConfigError(f"{source}: looks like a placeholder, not a random key")
    return MasterKey(material)


@dataclass
class Keyring:
    """The current key first, then older keys still accepted for unwrapping."""

    keys: list[MasterKey]
    path: Path | None = None
    _stamp: tuple[int, int] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ConfigError("the keyring holds no master key")

    @property
    def current(self) -> MasterKey:
        self.refresh()
        return self.keys[0]

    def find(self, key_id: str) -> MasterKey | None:
        self.refresh()
        return next((k for k in self.keys if k.key_id == key_id), None)

    def key_ids(self) -> list[str]:
        self.refresh()
        return [k.key_id for k in self.keys]

    def refresh(self) -> None:
        """Re-read the key file if it changed on disk (a rotation by another process)."""
        if self.path is None:
            return
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                return
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self.keys = _read_key_file(self.path)
                self._stamp = stamp

    def save(self) -> None:
        """Write the keyring to its file atomically with mode 0600 (file-backed keyrings only)."""
        if self.path is None:
            raise FatalError("the master key comes from MTROBOT_MASTER_KEY; change it there")
        with self._lock:
            _write_key_file(self.path, self.keys)
            st = self.path.stat()
            self._stamp = (st.st_mtime_ns, st.st_size)


def load_keyring(settings: Settings, *, create: bool = True) -> Keyring:
    """The keyring from ``MTROBOT_MASTER_KEY``, else from the data dir's key file (created on first run)."""
    if settings.master_key is not None:
        parts = [p for p in settings.master_key.get_secret_value().split(",") if p.strip()]
        keys = [parse_key(p, f"MTROBOT_MASTER_KEY (key {i + 1})") for i, p in enumerate(parts)]
        return Keyring(keys)
    path = settings.data_dir / KEY_FILE_NAME
    if not path.exists():
        if not create:
            raise FatalError(f"no master key: {path} does not exist and MTROBOT_MASTER_KEY is unset")
        _create_key_file(path)
    ring = Keyring(_read_key_file(path), path=path)
    ring.refresh()
    return ring


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    payload = _render([MasterKey.generate()])
    try:
        # O_EXCL: two processes starting together must not each create a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def _render(keys: list[MasterKey]) -> str:
    created = datetime.now(UTC).isoformat()
    entries = [{"id": k.key_id, "key": k.encoded(), "created": created} for k in keys]
    return json.dumps({"version": 1, "keys": entries}, indent=1) + "\n"


def _write_key_file(path: Path, keys: list[MasterKey]) -> None:
    write_atomically(path, _render(keys), mode=PRIVATE, durable=True)


def _read_key_file(path: Path) -> list[MasterKey]:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise FatalError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    try:
        document = json.loads(path.read_text())
        keys = [parse_key(entry["key"], f"{path} key {entry.get('id', '?')}") for entry in document["keys"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise FatalError(f"{path} is not a valid mtrobot key file: {exc}") from None
    if not keys:
        raise FatalError(f"{path} holds no key")
    return keys
