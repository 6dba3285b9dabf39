"""Every TRADE_RETCODE and last_error (RES_*) code: its name, how to react, and words a trader understands.

This is the one place that knows what a broker answer means (MT5_REFERENCE.md sections 7 and 8). The
connector maps :class:`Reaction` to its error categories; nobody else interprets raw codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mtrobot.broker.constants import RES_E_INTERNAL_FAIL


class Reaction(StrEnum):
    """What a caller should do after a code."""

    OK = "ok"
    """Success."""
    OK_IDEMPOTENT = "ok_idempotent"
    """Nothing was done, but the intent already holds (no changes, position already closed)."""
    RETRY = "retry"
    """Transient and certainly not executed: resend with a fresh price after a short wait (bounded)."""
    AMBIGUOUS = "ambiguous"
    """The request may have executed: look it up (orders, positions, deals) before any resend."""
    LATER = "later"
    """Wait for the market or the state to change (market closed, frozen) before trying again."""
    FATAL = "fatal"
    """The request or the configuration is wrong: fix it, never loop."""


@dataclass(frozen=True, slots=True)
class CodeInfo:
    code: int
    name: str
    reaction: Reaction
    message: str
    reaction_on_send: Reaction | None = None
    """For last_error codes: the reaction when the failed call was ``order_send`` (the request may have
    reached the server), when it differs from ``reaction``."""

    def reaction_for(self, operation: str) -> Reaction:
        if operation == "order_send" and self.reaction_on_send is not None:
            return self.reaction_on_send
        return self.reaction


_R = Reaction

_TRADE: tuple[tuple[int, str, Reaction, str], ...] = (
    (0, "TRADE_RETCODE_CHECK_OK", _R.OK, "The order passed the broker's checks."),
    (10004, "TRADE_RETCODE_REQUOTE", _R.RETRY, "The price moved before the order was filled (requote)."),
    (10006, "TRADE_RETCODE_REJECT", _R.RETRY, "The broker rejected the order."),
    (10007, "TRADE_RETCODE_CANCEL", _R.FATAL, "The order was cancelled by the trader."),
    (10008, "TRADE_RETCODE_PLACED", _R.OK, "The order was placed."),
    (10009, "TRADE_RETCODE_DONE", _R.OK, "The order was executed."),
    (10010, "TRADE_RETCODE_DONE_PARTIAL", _R.OK, "Only part of the order was filled."),
    (
        10011,
        "TRADE_RETCODE_ERROR",
        _R.AMBIGUOUS,
        "The broker reported a processing error; the order may or may not have been executed.",
    ),
    (
        10012,
        "TRADE_RETCODE_TIMEOUT",
        _R.AMBIGUOUS,
        "The broker timed out; the order may or may not have been executed.",
    ),
    (10013, "TRADE_RETCODE_INVALID", _R.FATAL, "The broker refused the order as invalid."),
    (
        10014,
        "TRADE_RETCODE_INVALID_VOLUME",
        _R.FATAL,
        "The volume is not allowed for this symbol (check the minimum, maximum and step).",
    ),
    (
        10015,
        "TRADE_RETCODE_INVALID_PRICE",
        _R.FATAL,
        "The price is not valid for this order type or too close to the market.",
    ),
    (
        10016,
        "TRADE_RETCODE_INVALID_STOPS",
        _R.FATAL,
        "The stop loss or take profit is invalid or too close to the market.",
    ),
    (
        10017,
        "TRADE_RETCODE_TRADE_DISABLED",
        _R.FATAL,
        "Trading is disabled for this account or symbol (for example a read-only investor login).",
    ),
    (10018, "TRADE_RETCODE_MARKET_CLOSED", _R.LATER, "The market is closed."),
    (10019, "TRADE_RETCODE_NO_MONEY", _R.FATAL, "There is not enough free margin for this order."),
    (10020, "TRADE_RETCODE_PRICE_CHANGED", _R.RETRY, "Prices changed before the order was filled."),
    (10021, "TRADE_RETCODE_PRICE_OFF", _R.RETRY, "The broker has no price for this symbol right now."),
    (10022, "TRADE_RETCODE_INVALID_EXPIRATION", _R.FATAL, "The expiration date is not allowed."),
    (10023, "TRADE_RETCODE_ORDER_CHANGED", _R.RETRY, "The order changed meanwhile; it will be re-read."),
    (10024, "TRADE_RETCODE_TOO_MANY_REQUESTS", _R.RETRY, "Too many requests; slowing down."),
    (
        10025,
        "TRADE_RETCODE_NO_CHANGES",
        _R.OK_IDEMPOTENT,
        "Nothing to change: the order already has these values.",
    ),
    (
        10026,
        "TRADE_RETCODE_SERVER_DISABLES_AT",
        _R.FATAL,
        "The broker has disabled automated trading for this account.",
    ),
    (
        10027,
        "TRADE_RETCODE_CLIENT_DISABLES_AT",
        _R.FATAL,
        "Algo trading is switched off in the MetaTrader terminal.",
    ),
    (10028, "TRADE_RETCODE_LOCKED", _R.RETRY, "The order is locked for processing."),
    (
        10029,
        "TRADE_RETCODE_FROZEN",
        _R.LATER,
        "The order or position is too close to the market to be changed (freeze level).",
    ),
    (10030, "TRADE_RETCODE_INVALID_FILL", _R.FATAL, "This filling mode is not supported for the symbol."),
    (
        10031,
        "TRADE_RETCODE_CONNECTION",
        _R.AMBIGUOUS,
        "No connection to the broker's trade server; the order's fate will be checked.",
    ),
    (10032, "TRADE_RETCODE_ONLY_REAL", _R.FATAL, "This operation is only allowed on live accounts."),
    (10033, "TRADE_RETCODE_LIMIT_ORDERS", _R.FATAL, "The limit of pending orders has been reached."),
    (10034, "TRADE_RETCODE_LIMIT_VOLUME", _R.FATAL, "The volume limit for this symbol has been reached."),
    (10035, "TRADE_RETCODE_INVALID_ORDER", _R.FATAL, "This order type is not allowed for the symbol."),
    (10036, "TRADE_RETCODE_POSITION_CLOSED", _R.OK_IDEMPOTENT, "The position is already closed."),
    (10038, "TRADE_RETCODE_INVALID_CLOSE_VOLUME", _R.FATAL, "The close volume is larger than the position."),
    (
        10039,
        "TRADE_RETCODE_CLOSE_ORDER_EXIST",
        _R.OK_IDEMPOTENT,
        "A close order for this position already exists.",
    ),
    (10040, "TRADE_RETCODE_LIMIT_POSITIONS", _R.FATAL, "The limit of open positions has been reached."),
    (
        10041,
        "TRADE_RETCODE_REJECT_CANCEL",
        _R.FATAL,
        "The pending order's activation was rejected and the order cancelled.",
    ),
    (10042, "TRADE_RETCODE_LONG_ONLY", _R.FATAL, "Only buy positions are allowed for this symbol."),
    (10043, "TRADE_RETCODE_SHORT_ONLY", _R.FATAL, "Only sell positions are allowed for this symbol."),
    (10044, "TRADE_RETCODE_CLOSE_ONLY", _R.FATAL, "Only closing positions is allowed for this symbol."),
    (10045, "TRADE_RETCODE_FIFO_CLOSE", _R.FATAL, "Positions must be closed oldest first (FIFO rule)."),
    (
        10046,
        "TRADE_RETCODE_HEDGE_PROHIBITED",
        _R.FATAL,
        "Opposite positions on one symbol are not allowed on this account.",
    ),
)

_RES: tuple[tuple[int, str, Reaction, str, Reaction | None], ...] = (
    (1, "RES_S_OK", _R.OK, "Success.", None),
    (-1, "RES_E_FAIL", _R.RETRY, "The terminal call failed.", _R.AMBIGUOUS),
    (-2, "RES_E_INVALID_PARAMS", _R.FATAL, "The request has an invalid field; it was not sent.", None),
    (-3, "RES_E_NO_MEMORY", _R.FATAL, "The terminal ran out of memory.", None),
    (-4, "RES_E_NOT_FOUND", _R.FATAL, "Not found (unknown symbol, or no history).", None),
    (
        -5,
        "RES_E_INVALID_VERSION",
        _R.FATAL,
        "The terminal and its Python module are incompatible versions.",
        None,
    ),
    (-6, "RES_E_AUTH_FAILED", _R.FATAL, "Login failed: wrong account number, password or server.", None),
    (-7, "RES_E_UNSUPPORTED", _R.FATAL, "The terminal does not support this function.", None),
    (
        -8,
        "RES_E_AUTO_TRADING_DISABLED",
        _R.FATAL,
        "Trading through the Python API is disabled in the terminal.",
        None,
    ),
    (-10000, "RES_E_INTERNAL_FAIL", _R.RETRY, "The connection to the terminal failed.", _R.AMBIGUOUS),
    (-10001, "RES_E_INTERNAL_FAIL_SEND", _R.RETRY, "Sending to the terminal failed.", _R.AMBIGUOUS),
    (-10002, "RES_E_INTERNAL_FAIL_RECEIVE", _R.RETRY, "The terminal's answer was lost.", _R.AMBIGUOUS),
    (-10003, "RES_E_INTERNAL_FAIL_INIT", _R.FATAL, "The terminal could not be started or found.", None),
    (-10004, "RES_E_INTERNAL_FAIL_CONNECT", _R.RETRY, "Not connected to the terminal.", None),
    (-10005, "RES_E_INTERNAL_FAIL_TIMEOUT", _R.RETRY, "The terminal did not answer in time.", _R.AMBIGUOUS),
)

TRADE_RETCODES: dict[int, CodeInfo] = {c: CodeInfo(c, n, r, m) for c, n, r, m in _TRADE}
"""Every trade server return code, by value."""

LAST_ERRORS: dict[int, CodeInfo] = {c: CodeInfo(c, n, r, m, s) for c, n, r, m, s in _RES}
"""Every ``last_error()`` code, by value."""


def is_link_failure(code: int) -> bool:
    """A ``last_error`` code of the link to the terminal (RES_E_INTERNAL_FAIL*), not of the trade server:
    the session is in doubt, and for a send the request may or may not have reached the server."""
    return code <= RES_E_INTERNAL_FAIL


def trade_retcode(code: int) -> CodeInfo:
    """Describe a trade server return code. An unknown code is treated as ambiguous: never resend blindly."""
    info = TRADE_RETCODES.get(code)
    if info is not None:
        return info
    return CodeInfo(
        code, f"TRADE_RETCODE_{code}", _R.AMBIGUOUS, f"The broker answered with unknown code {code}."
    )


def last_error_code(code: int) -> CodeInfo:
    """Describe a ``last_error()`` code; unknown codes are fatal for the call (and ambiguous for a send)."""
    info = LAST_ERRORS.get(code)
    if info is not None:
        return info
    return CodeInfo(
        code, f"RES_{code}", _R.FATAL, f"The terminal failed with unknown code {code}.", _R.AMBIGUOUS
    )


def retcode_name(code: int) -> str:
    return trade_retcode(code).name


def retcode_comment(code: int) -> str:
    """The short server text MT5 puts into ``OrderSendResult.comment`` for a code."""
    return _SERVER_COMMENTS.get(code, trade_retcode(code).name.removeprefix("TRADE_RETCODE_").title())


_SERVER_COMMENTS: dict[int, str] = {
    0: "Done",
    10004: "Requote",
    10006: "Request rejected",
    10007: "Request canceled by trader",
    10008: "Order placed",
    10009: "Request executed",
    10010: "Request executed partially",
    10011: "Request processing error",
    10012: "Request canceled by timeout",
    10013: "Invalid request",
    10014: "Invalid volume",
    10015: "Invalid price",
    10016: "Invalid stops",
    10017: "Trade disabled",
    10018: "Market closed",
    10019: "No money",
    10020: "Prices changed",
    10021: "No prices",
    10022: "Invalid expiration",
    10023: "Order state changed",
    10024: "Too frequent requests",
    10025: "No changes",
    10026: "AutoTrading disabled by server",
    10027: "AutoTrading disabled by client",
    10028: "Request locked for processing",
    10029: "Order or position frozen",
    10030: "Unsupported filling mode",
    10031: "No connection",
    10032: "Only real accounts allowed",
    10033: "Pending orders limit reached",
    10034: "Volume limit reached",
    10035: "Invalid order type",
    10036: "Position already closed",
    10038: "Invalid close volume",
    10039: "Close order already exists",
    10040: "Positions limit reached",
    10041: "Pending order activation rejected",
    10042: "Only long positions allowed",
    10043: "Only short positions allowed",
    10044: "Only position closing allowed",
    10045: "Position closing allowed only by FIFO rule",
    10046: "Opposite positions disabled",
}
