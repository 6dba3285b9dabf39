"""Child-process helpers shared by everything that spawns a process."""

from __future__ import annotations

import signal
import sys


def die_with_parent() -> None:
    """``preexec_fn`` for children: on Linux the kernel sends SIGTERM when the parent dies, so even a
    SIGKILLed parent leaves no orphan behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
