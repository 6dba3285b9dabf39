"""The connection test, run as a short-lived isolated child: ``python -m mtrobot.web.probe``.

The parent writes one JSON request on standard input (never argv, never the environment), the child logs
in once through the broker interface, reads ``account_info`` and ``terminal_info``, logs out, and prints one
JSON result on standard output. The child either gets the password itself (a first connect) or a data key
and the sealed record (a re-test of a stored account): then the plaintext exists only in this process.

Every outcome is mapped to words a trader can act on (MT5_REFERENCE.md sections 8 and 9).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sys
from dataclasses import asdict, dataclass
from dataclasses import field as dc_field
from typing import Any

# last_error codes (MT5_REFERENCE.md section 8), spelled here so the child imports nothing heavy.
RES_E_AUTH_FAILED = -6
RES_E_AUTO_TRADING_DISABLED = -8
UNREACHABLE_CODES = frozenset({-10000, -10001, -10002, -10003, -10004, -10005})


@dataclass(frozen=True)
class ProbeOutcome:
    """What the connection test found; ``code`` is stable, ``message`` is for the trader."""

    ok: bool
    code: str
    message: str
    field: str | None = None
    account: dict[str, Any] = dc_field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def wrong_password(login: int, server: str) -> ProbeOutcome:
    return ProbeOutcome(
        False,
        "wrong_password",
        f"The broker refused the password for account {login} on {server}. Check the password (it is "
        "case-sensitive) and the account number.",
        "password",
    )


def unknown_server(server: str) -> ProbeOutcome:
    return ProbeOutcome(
        False,
        "unknown_server",
        f"'{server}' is not a broker server this platform knows. Pick the server name exactly as your "
        "broker wrote it in the account e-mail.",
        "server",
    )


def investor_password(login: int) -> ProbeOutcome:
    return ProbeOutcome(
        False,
        "investor_password",
        f"This is the investor (read-only) password of account {login}: it can watch but not trade. Enter "
        "the master (trading) password instead. (If you did enter the master password, the broker has "
        "disabled trading for this account.)",
        "password",
    )


def trading_disabled(login: int, why: str) -> ProbeOutcome:
    return ProbeOutcome(
        False,
        "trading_disabled",
        f"Account {login} logged in, but trading is disabled: {why} Ask your broker to enable it.",
        None,
    )


def unreachable(server: str, why: str) -> ProbeOutcome:
    return ProbeOutcome(
        False,
        "broker_unreachable",
        f"The broker server {server} could not be reached ({why}). Try again in a few minutes; if it "
        "persists, the broker may be in maintenance.",
        None,
    )


def classify_failed_login(code: int, description: str, login: int, server: str) -> ProbeOutcome:
    text = description.lower()
    if "investor" in text or "read-only" in text:
        return investor_password(login)
    if "server" in text and ("unknown" in text or "not found" in text or "invalid" in text):
        return unknown_server(server)
    if code == RES_E_AUTH_FAILED:
        return wrong_password(login, server)
    if code == RES_E_AUTO_TRADING_DISABLED:
        return trading_disabled(login, "the terminal does not allow trading through the Python API.")
    if code in UNREACHABLE_CODES:
        return unreachable(server, description or f"error {code}")
    return ProbeOutcome(False, "login_failed", f"The login failed: {description or f'error {code}'}.", None)


def classify_session(account: Any, terminal: Any, login: int, server: str) -> ProbeOutcome:
    """A logged-in session: is it one that can trade?"""
    if account is None or terminal is None:
        return unreachable(server, "the account information could not be read")
    if not getattr(terminal, "connected", True):
        return unreachable(server, "the terminal is not connected to the trade server")
    if not getattr(account, "trade_allowed", False):
        # The investor login is by far the most common reason (MT5_REFERENCE.md section 9).
        return investor_password(login)
    if not getattr(account, "trade_expert", True):
        return trading_disabled(login, "the broker does not allow automated trading on this account.")
    if getattr(terminal, "tradeapi_disabled", False) or not getattr(terminal, "trade_allowed", True):
        return trading_disabled(login, "automated trading is switched off in the trading terminal.")
    summary = {
        name: getattr(account, name, None)
        for name in ("login", "name", "server", "company", "currency", "leverage", "balance", "trade_mode")
    }
    return ProbeOutcome(True, "ok", f"Connected to account {login} on {server}.", None, summary)


async def check(terminal: Any, login: int, password: str, server: str, timeout_ms: int) -> ProbeOutcome:
    """Log in once on ``terminal`` and judge the session; always shuts the terminal down."""
    try:
        if not await terminal.initialize(login=login, password=password, server=server, timeout=timeout_ms):
            code, description = await terminal.last_error()
            return classify_failed_login(int(code), str(description), login, server)
        return classify_session(await terminal.account_info(), await terminal.terminal_info(), login, server)
    except (OSError, ConnectionError, TimeoutError) as exc:
        return unreachable(server, type(exc).__name__)
    finally:
        # The verdict is already made; a failed logout changes nothing.
        with contextlib.suppress(Exception):
            await terminal.shutdown()


def _password_from(request: dict[str, Any]) -> str:
    if "password" in request:
        return str(request["password"])
    from mtrobot.vault.envelope import SealedSecret, open_with_data_key

    data_key = base64.b64decode(request["data_key"])
    record = SealedSecret.from_dict(request["sealed"])
    return open_with_data_key(data_key, record, str(request["account_id"]))


async def run(request: dict[str, Any]) -> ProbeOutcome:
    from mtrobot.broker.backends import open_terminal

    login, server = int(request["login"]), str(request["server"])
    password = _password_from(request)
    terminal = open_terminal(str(request["backend"]), **dict(request.get("options") or {}))
    timeout_ms = int(float(request.get("timeout_s", 15)) * 1000)
    return await check(terminal, login, password, server, timeout_ms)


def main() -> int:
    try:
        request = json.loads(sys.stdin.read())
        outcome = asyncio.run(run(request))
    except Exception as exc:  # the parent gets a verdict, never a traceback with a password in a frame
        outcome = ProbeOutcome(
            False, "probe_failed", f"The connection test could not run ({type(exc).__name__})."
        )
    sys.stdout.write(outcome.to_json() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
