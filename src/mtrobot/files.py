"""Files other processes read while we rewrite them: replaced whole, never seen half-written."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

PRIVATE = 0o600
"""Readable and writable by this user only: secrets, credentials, anything a trader's account is in."""


def write_atomically(path: Path, data: str | bytes, *, mode: int = 0o644, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` in one step: a reader sees the old file or the new one, never a part.

    The temporary file is created with ``mode`` from the start (so a :data:`PRIVATE` file is never briefly
    readable by others) under a name no other writer uses, in the same directory (``os.replace`` is atomic
    only within one file system). ``durable`` fsyncs it before the rename, for files whose loss in a power
    cut would lose something no one can rebuild (the master keys); the rest are rewritten often and cheap
    to rebuild.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    payload = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
