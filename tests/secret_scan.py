"""Where a secret can be found in a live process: its environment, its argv, its memory (as root reads it)."""

from __future__ import annotations

import re
from pathlib import Path

_REGION = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+)")
_CHUNK = 1 << 20


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def memory_holds(pid: int, needles: list[bytes]) -> bool:
    """True if any needle is in a readable mapping of ``pid`` (chunks overlap, so none is missed)."""
    longest = max(len(n) for n in needles)
    try:
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
        mem = open(f"/proc/{pid}/mem", "rb", buffering=0)  # noqa: SIM115
    except OSError:
        return False
    with mem:
        for line in maps:
            m = _REGION.match(line)
            if m is None or "r" not in m.group(3) or line.endswith(("[vvar]", "[vsyscall]", "[vvar_vclock]")):
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            pos = start
            while pos < end:
                size = min(_CHUNK + longest, end - pos)
                try:
                    mem.seek(pos)
                    block = mem.read(size)
                except (OSError, OverflowError, ValueError):
                    break
                if any(n in block for n in needles):
                    return True
                pos += _CHUNK
    return False


def where_held(pid: int, needles: list[bytes]) -> list[str]:
    """The places of ``pid`` that hold one of ``needles``: ``environ``, ``cmdline``, ``memory``."""
    found = []
    if any(n in _read(f"/proc/{pid}/environ") for n in needles):
        found.append("environ")
    if any(n in _read(f"/proc/{pid}/cmdline") for n in needles):
        found.append("cmdline")
    if memory_holds(pid, needles):
        found.append("memory")
    return found


def cmdline(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").decode(errors="replace").strip()
