"""Running the connection probe in its own short-lived process, with a deadline.

The child gets a minimal environment (no ``MTROBOT_MASTER_KEY``, no database URL: it needs neither), its
request on standard input, and is killed if it does not answer in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from mtrobot.logging import get_logger
from mtrobot.proc import die_with_parent
from mtrobot.web.probe import ProbeOutcome, unreachable

log = get_logger(__name__)

_PASSED_ENV = ("PATH", "PYTHONPATH", "HOME", "LANG", "LC_ALL", "TZ", "VIRTUAL_ENV", "SYSTEMROOT")


def probe_env(extra: Mapping[str, str] = {}) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV}
    env.update(extra)
    return env


async def run_probe(
    request: dict[str, Any], timeout_s: float, extra_env: Mapping[str, str] = {}
) -> ProbeOutcome:
    """Test a connection in a child process; a child that hangs or dies becomes 'broker unreachable'."""
    server = str(request.get("server", "?"))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mtrobot.web.probe",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=probe_env(extra_env), preexec_fn=die_with_parent,
    )  # fmt: skip
    payload = json.dumps({**request, "timeout_s": timeout_s}).encode()
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(payload), timeout_s + 2.0)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return unreachable(server, f"no answer within {timeout_s:.0f} s")
    try:
        data = json.loads(stdout.decode().strip().splitlines()[-1])
        return ProbeOutcome(**data)
    except (ValueError, IndexError, TypeError):
        log.error("connection probe gave no verdict", code=process.returncode, stderr=stderr.decode()[-500:])
        return ProbeOutcome(False, "probe_failed", "The connection test could not run; please try again.")
