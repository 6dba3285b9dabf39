"""The hub API's bearer token: one random secret in ``DATA_DIR/hub.token`` (mode 0600), made on first use.

Whoever may change the platform's configuration over HTTP reads it from there: the operator. No part of the
platform calls the hub's HTTP API (they use the ``central_hub`` bucket over the bus), so none is handed it.
The hub compares it in constant time. It never appears in argv, a URL or a log line.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from mtrobot.core.errors import FatalError
from mtrobot.settings import Settings

TOKEN_FILE = "hub.token"  # noqa: S105 - the name of the file, not a secret


def hub_token_path(settings: Settings) -> Path:
    return settings.data_dir / TOKEN_FILE


def ensure_hub_token(settings: Settings) -> str:
    """The token, created (0600, never overwritten) if the data dir has none yet."""
    path = hub_token_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_hub_token(settings)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    return read_hub_token(settings)


def read_hub_token(settings: Settings) -> str:
    """The token in the data dir; refuses a file that others can read (it would not be a secret)."""
    path = hub_token_path(settings)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise FatalError(f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}): chmod 600 it")
    token = path.read_text().strip()
    if len(token) < 32:
        raise FatalError(f"{path} does not hold a hub token: remove it and start the hub again")
    return token


def token_matches(expected: str, given: str | None) -> bool:
    return given is not None and secrets.compare_digest(expected.encode(), given.encode())
