"""What the trader reads of an agent's life in the account's activity log: an unexpected stop and the restart.

The agent cannot write these lines itself (a kill -9 gives it no last word), so the supervisor, which
watches every agent's exit, writes them straight into the database the web reads the log from.
"""

from __future__ import annotations

import signal

from mtrobot.logging import get_logger
from mtrobot.settings import Settings

log = get_logger(__name__)

KIND = "agent"


def exit_words(code: int | None) -> str:
    """An exit status as a trader can read it: ``killed by SIGKILL``, ``exited with code 1``."""
    if code is None:
        return "could not be started"
    number = -code if code < 0 else code - 128 if code > 128 else 0  # a sandbox wrapper reports 128 + N
    try:
        return f"was killed ({signal.Signals(number).name})" if number else f"exited with code {code}"
    except ValueError:
        return f"exited with code {code}"


def stopped_line(code: int | None, restart_in_s: float | None) -> str:
    then = (
        f"it is started again in {restart_in_s:.1f} s"
        if restart_in_s is not None
        else "it is not restarted until you resume the account"
    )
    return (
        f"The account's agent stopped unexpectedly: it {exit_words(code)}; {then}. Nothing trades meanwhile; "
        "orders sent in the meantime wait and are carried out once it runs again."
    )


def back_line(down_s: float) -> str:
    return f"The account's agent is running again, {down_s:.1f} s after it stopped."


def write_line(settings: Settings, account: str, message: str) -> None:
    """Append one line to the account's activity log (blocking: run it in a thread). A database that
    cannot take it costs the line, never the supervision: it is logged and dropped."""
    from mtrobot.storage import orders as order_repo
    from mtrobot.storage.db import one_off_session

    try:
        with one_off_session(settings.resolved_database_url) as db:
            order_repo.log_activity(db, account, KIND, message)
            db.commit()
    except Exception as exc:
        log.warning("activity line not written", account=account, error=repr(exc))
