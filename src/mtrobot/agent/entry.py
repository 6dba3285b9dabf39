"""The agent's entry, shared by ``python -m mtrobot.agent --account ID`` (what the supervisor starts: no
typer, no rich console, a few MB and some hundred ms less per agent) and ``mtrobot agent --account ID``
(DESIGN 3.1). Both end in :func:`run`.

This module imports only the standard library at its top: the first thing an agent does is
:func:`stop_on_sigterm`, before any import that can take seconds on a busy host.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

EXIT_STOPPED = 0
"""Stopped on request (control ``stop`` or SIGTERM): the supervisor does not restart it on its own."""
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def _stop_now(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(EXIT_STOPPED)


def stop_on_sigterm() -> None:
    """Until the agent's event loop takes SIGTERM over (``run_agent``), a SIGTERM ends the process at once:
    nothing is open yet, so that is a clean stop. Without a handler a SIGTERM would be lost: in its
    bubblewrap sandbox the agent is PID 1 of its PID namespace, and the kernel drops every signal PID 1 has
    no handler for, so the supervisor would wait its whole grace period and then kill it."""
    signal.signal(signal.SIGTERM, _stop_now)


def skip_rich() -> None:
    """structlog imports rich (and pygments) when it is installed, only to draw tracebacks on a console;
    an agent writes JSON lines to its log file and never draws one. Marking rich as absent (structlog's own
    ``except ImportError`` path) saves each agent about 2.8 MB and ~10 % of its import CPU, which 20
    agents starting at once on 2 cores wait for. Only the lean entry does it (:func:`main`); a process that
    already imported rich keeps it."""
    sys.modules.setdefault("rich", None)  # type: ignore[arg-type]


def run(account: str, data_dir: Path | None = None) -> int:
    """One account's agent, from its arguments to its exit code: the hand-off on stdin, then the agent."""
    stop_on_sigterm()
    from mtrobot import eventloop
    from mtrobot.agent.handoff import read_handoff
    from mtrobot.agent.service import run_agent
    from mtrobot.core.errors import MtrobotError
    from mtrobot.logging import configure_logging
    from mtrobot.settings import Settings

    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    configure_logging(stream=sys.stderr, service=f"agent-{account}")
    try:
        handoff = read_handoff(account)
        return int(eventloop.run(run_agent(account, settings, handoff)) or 0)
    except MtrobotError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


ACCOUNT_ID_HELP = "an account id is letters a-z, digits, '-' and '_'"


def main(argv: list[str] | None = None) -> int:
    """``python -m mtrobot.agent --account ID [--data-dir DIR]``, the same options as ``mtrobot agent``."""
    stop_on_sigterm()
    skip_rich()  # here, not in run(): `mtrobot agent` runs under typer, which may draw with rich
    import argparse

    from mtrobot.core.ids import is_account_id

    def account_id(value: str) -> str:
        if not is_account_id(value):
            raise argparse.ArgumentTypeError(ACCOUNT_ID_HELP)
        return value

    parser = argparse.ArgumentParser(
        prog="python -m mtrobot.agent",
        description="Run one account's agent (started by `mtrobot supervisor`, the hand-off on stdin).",
    )
    parser.add_argument("--account", required=True, type=account_id, help="the platform account id")
    parser.add_argument("--data-dir", type=Path, default=None, help="data directory")
    args = parser.parse_args(argv)
    return run(args.account, args.data_dir)
