"""A small append-only disk queue with named cursors: how audit never blocks the order path and never loses.

``append`` is one ``write`` to a file opened with ``O_APPEND`` (microseconds; the data survives a SIGKILL of
the process in the page cache). Each sink (the JetStream stream, the Kafka mirror) reads behind its own
cursor and commits it only after the sink acknowledged, so a slow or absent sink only lets its backlog grow
on disk; when it comes back the backlog is replayed. Segments every cursor has passed are deleted.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from mtrobot.files import write_atomically

_CHUNK = 1024 * 1024
_SEGMENT_RE = re.compile(r"^seg-(\d{10})\.jsonl$")


@dataclass(frozen=True, slots=True, order=True)
class Position:
    segment: int
    offset: int

    def __str__(self) -> str:
        return f"{self.segment}:{self.offset}"


@dataclass(frozen=True, slots=True)
class SpoolItem:
    start: Position
    end: Position
    payload: bytes

    @property
    def key(self) -> str:
        """Stable across restarts: used as the JetStream ``Nats-Msg-Id`` so a replay is deduplicated."""
        return f"{self.start.segment}-{self.start.offset}"


class Spool:
    """Line-oriented segments ``seg-NNNNNNNNNN.jsonl`` plus one ``cursor-NAME`` file per reader."""

    def __init__(self, directory: Path, cursors: tuple[str, ...], segment_bytes: int = 8 * 1024**2) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.dir = directory
        self.cursors = cursors
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        id_file = directory / "spool-id"
        if not id_file.exists():
            write_atomically(id_file, secrets.token_hex(6))
        self.spool_id = id_file.read_text().strip()
        segments = self._segments()
        self._segment = segments[-1] if segments else 1
        self._fd = self._open(self._segment)
        self._size = os.fstat(self._fd).st_size
        self._reading: tuple[int, int] | None = None
        """``(segment, fd)`` of the segment last read: a reader polls the same file after every batch."""

    def _path(self, segment: int) -> Path:
        return self.dir / f"seg-{segment:010d}.jsonl"

    def _open(self, segment: int) -> int:
        return os.open(self._path(segment), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _segments(self) -> list[int]:
        found = (_SEGMENT_RE.match(p.name) for p in self.dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)
            self._close_reading()

    def _close_reading(self) -> None:
        if self._reading is not None:
            os.close(self._reading[1])
            self._reading = None

    def append(self, payload: bytes) -> None:
        """Add one record (a single line; newlines inside are refused)."""
        if b"\n" in payload:
            raise ValueError("spool records are single lines")
        with self._lock:
            if self._size >= self.segment_bytes:  # only this object appends (the connector's flock)
                os.close(self._fd)
                self._segment += 1
                self._fd = self._open(self._segment)
                self._size = 0
            self._size += os.write(self._fd, payload + b"\n")

    def cursor(self, name: str) -> Position:
        path = self.dir / f"cursor-{name}"
        if path.exists():
            seg, off = path.read_text().split(":")
            return Position(int(seg), int(off))
        segments = self._segments()
        return Position(segments[0] if segments else 1, 0)

    def read(self, name: str, limit: int = 256, start: Position | None = None) -> list[SpoolItem]:
        """Up to ``limit`` complete records after cursor ``name``, or after ``start`` (a reader that
        commits its cursor less often than it reads); a torn last line is left for later."""
        pos = start or self.cursor(name)
        items: list[SpoolItem] = []
        while len(items) < limit:
            chunk = self._chunk(pos)
            offset = pos.offset
            for line in chunk.split(b"\n")[:-1]:
                start = Position(pos.segment, offset)
                offset += len(line) + 1
                items.append(SpoolItem(start, Position(pos.segment, offset), line))
                if len(items) >= limit:
                    return items
            if offset > pos.offset and len(chunk) == _CHUNK:
                pos = Position(pos.segment, offset)  # more of this segment to read
                continue
            if pos.segment >= self._segment:
                break  # the segment being written: wait for more
            pos = Position(pos.segment + 1, 0)  # a finished segment: go on to the next
            if not items:
                self._commit_position(name, pos)
        return items

    def _chunk(self, pos: Position) -> bytes:
        """Up to ``_CHUNK`` bytes of the segment from ``pos`` on, through one kept descriptor (no open, no
        1 MiB buffer per read: only the bytes there are)."""
        with self._lock:
            if self._reading is None or self._reading[0] != pos.segment:
                self._close_reading()
                try:
                    fd = os.open(self._path(pos.segment), os.O_RDONLY)
                except FileNotFoundError:
                    return b""
                self._reading = (pos.segment, fd)
            fd = self._reading[1]
            size = os.fstat(fd).st_size
            if size <= pos.offset:
                return b""
            return os.pread(fd, min(_CHUNK, size - pos.offset), pos.offset)

    def commit(self, name: str, item: SpoolItem) -> None:
        """Mark everything up to and including ``item`` as delivered for cursor ``name``."""
        self._commit_position(name, item.end)
        self._collect()

    def _commit_position(self, name: str, pos: Position) -> None:
        write_atomically(self.dir / f"cursor-{name}", str(pos))

    def backlog(self, name: str) -> int:
        """Bytes not yet delivered to cursor ``name`` (a gauge for /metrics)."""
        pos = self.cursor(name)
        total = 0
        for seg in self._segments():
            if seg >= pos.segment:
                size = self._path(seg).stat().st_size
                total += size - pos.offset if seg == pos.segment else size
        return total

    def _collect(self) -> None:
        oldest = min(self.cursor(c).segment for c in self.cursors)
        for seg in self._segments():
            if seg < oldest and seg < self._segment:
                if self._reading is not None and self._reading[0] == seg:
                    with self._lock:
                        self._close_reading()
                self._path(seg).unlink(missing_ok=True)
