"""write_atomically: a reader sees the old file or the new one; a private file is never readable by others."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mtrobot.files import PRIVATE, write_atomically


def test_a_private_file_is_created_private_and_replaces_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "creds"
    path.write_text("old")
    os.chmod(path, 0o644)
    write_atomically(path, "new secret", mode=PRIVATE)
    assert path.read_text() == "new secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["creds"]  # no temporary file left beside it


def test_bytes_and_durable_writes(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    write_atomically(path, b"\x00\x01", mode=PRIVATE, durable=True)
    assert path.read_bytes() == b"\x00\x01"


def test_a_failed_replace_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state"
    target.mkdir()  # os.replace of a file onto a directory fails: the old "file" must stay as it was
    (target / "inside").write_text("kept")
    with pytest.raises(OSError):
        write_atomically(target, "new")
    assert (target / "inside").read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]
