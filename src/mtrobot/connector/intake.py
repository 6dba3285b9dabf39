"""How a raw message on ``orders.submitted.{account}.{symbol}`` becomes an OrderRequest, or a refusal.

Nothing here raises on any input: every payload ends as one of
- a request (strict JSON, the OrderRequest schema in pydantic's strict mode, the account and the subject's
  symbol matching the payload's);
- a refusal with a journal-worthy ``order_id`` (a readable object whose fields are wrong): the executor
  records it as ``rejected`` with a BrokerError of category ``validation``;
- an unreadable message (not strict JSON, not an object, no usable ``order_id``): the connector keeps it in
  the dead-letter stream ``ORDERS_DEAD_LETTER`` (see :class:`DeadLetter`), answers a BrokerError carrying
  whatever order id could be read from the bytes, and acknowledges it, so it never blocks the intake.

No coercion: ``"volume": true`` or ``"0.01"`` is refused, not read as a number; a key given twice is
refused, not "last one wins". Messages name the field and never repeat a long value.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field, ValidationError

from mtrobot.core.events import BrokerError, ErrorCategory, Record, utc_now
from mtrobot.core.ids import AccountId, is_order_id
from mtrobot.core.orders import OrderRequest
from mtrobot.core.strict import StrictJSONError, loads, number_text

INVALID = 10013
"""TRADE_RETCODE_INVALID: the code a server answers to a request it cannot read."""

_SUBJECT_SAFE = re.compile(r"^[A-Za-z0-9._#+-]{1,32}$")
_ORDER_ID_IN_BYTES = re.compile(rb'"order_id"\s*:\s*"([A-Za-z0-9_-]{1,24})"')
MAX_SCAN = 64 * 1024
DEAD_LETTER_KEEP_BYTES = 16 * 1024
"""How much of an unreadable payload the dead letter keeps (its size and SHA-256 are always recorded)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    retcode: int
    message: str


@dataclass(frozen=True, slots=True)
class Parsed:
    """The outcome of reading one message: a request, or a refusal with whatever ids could be read.

    ``order_id`` is set only when the order can be journaled under it; ``reply_order_id`` is the order id
    the sender is answered with (also read from an unreadable payload's bytes, when it is there)."""

    request: OrderRequest | None
    refusal: Refusal | None
    order_id: str | None
    symbol: str
    raw: dict[str, Any]
    reply_order_id: str = ""

    @property
    def unreadable(self) -> bool:
        """Nothing can be journaled: the message goes to the dead letter."""
        return self.order_id is None


_PHRASES: dict[str, str] = {
    "string_type": "must be text",
    "string_too_long": "must be at most {max_length} characters long",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "contains characters or a format that is not accepted here",
    "float_type": "must be a number (not text, true or false)",
    "int_type": "must be a whole number (not text, true or false)",
    "int_from_float": "must be a whole number",
    "finite_number": "must be a finite number",
    "greater_than": "must be more than {gt}",
    "greater_than_equal": "must be {ge} or more",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be {le} or less",
    "enum": "must be one of: {expected}",
    "literal_error": "must be one of: {expected}",
    "datetime_type": "must be a date and time in RFC 3339 text, e.g. 2026-01-02T03:04:05Z",
    "datetime_parsing": "must be a date and time in RFC 3339 text, e.g. 2026-01-02T03:04:05Z",
    "datetime_from_date_parsing": "must be a date and time in RFC 3339 text, e.g. 2026-01-02T03:04:05Z",
    "model_type": "must be a JSON object",
}


def _phrase(err: Any) -> str:
    kind = str(err["type"])
    template = _PHRASES.get(kind)
    if template is None:
        return str(err["msg"]).removeprefix("Value error, ")
    context = {k: _bound(v) for k, v in (err.get("ctx") or {}).items()}
    try:
        return template.format(**context)
    except (KeyError, IndexError):
        return template.split(" {")[0]


def _bound(value: Any) -> Any:
    return number_text(value) if isinstance(value, float) else value


def describe(exc: ValidationError) -> str:
    """Each problem of ``exc`` as words naming the field: "field 'volume' must be a number ..."."""
    problems: list[str] = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        if len(field) > 40:
            field = field[:39] + "…"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown field '{field}'")
        elif err["type"] == "missing":
            problems.append(f"missing field '{field}'")
        elif not field:
            problems.append(_phrase(err))
        else:
            problems.append(f"field '{field}' {_phrase(err)}")
    return "The order was refused: " + "; ".join(problems) + "."


def salvage_order_id(data: bytes) -> str:
    """The order id written in a payload that could not be read, so the sender can still be told."""
    match = _ORDER_ID_IN_BYTES.search(bytes(data[:MAX_SCAN]))
    return match.group(1).decode() if match else ""


def read_order(data: bytes, account: str, subject_symbol: str) -> Parsed:
    """Read an OrderRequest from ``data`` published on ``subject_symbol``'s subject; never raises."""
    try:
        raw = loads(data)
    except StrictJSONError as exc:
        message = f"The order was refused: {exc.message}."
        return Parsed(None, Refusal(INVALID, message), None, subject_symbol, {}, salvage_order_id(data))
    if not isinstance(raw, dict):
        message = "The order was refused: the payload is not a JSON object."
        return Parsed(None, Refusal(INVALID, message), None, subject_symbol, {})
    order_id = raw.get("order_id") if isinstance(raw.get("order_id"), str) else None
    order_id = order_id if order_id and is_order_id(order_id) else None
    raw_symbol = raw.get("symbol")
    # An unusable symbol must not become part of a subject: fall back to the subject's own token.
    symbol = (
        raw_symbol if isinstance(raw_symbol, str) and _SUBJECT_SAFE.fullmatch(raw_symbol) else subject_symbol
    )
    try:
        request = OrderRequest.model_validate_json(data, strict=True)
    except ValidationError as exc:
        return Parsed(None, Refusal(INVALID, describe(exc)), order_id, symbol, raw, order_id or "")
    refusal = _mismatch(request, account, subject_symbol)
    if refusal is not None:
        return Parsed(None, refusal, order_id, request.symbol, raw, request.order_id)
    return Parsed(request, None, request.order_id, request.symbol, raw, request.order_id)


def _mismatch(request: OrderRequest, account: str, subject_symbol: str) -> Refusal | None:
    if request.account != account:
        return Refusal(
            INVALID,
            f"The order was refused: field 'account' is '{request.account}' but it was sent to account "
            f"'{account}'.",
        )
    if request.symbol != subject_symbol:
        return Refusal(
            INVALID,
            f"The order was refused: field 'symbol' is '{request.symbol}' but it was published on the "
            f"subject of '{subject_symbol[:32]}'.",
        )
    return None


# -- dead letter -----------------------------------------------------------------------------------


class DeadLetter(Record):
    """An unreadable message kept aside on ``deadletter.orders.{account}`` (stream ``ORDERS_DEAD_LETTER``)."""

    ts: datetime = Field(default_factory=utc_now)
    account: AccountId
    subject: str
    stream_seq: int | None
    deliveries: int | None
    reason: str
    order_id: str = Field(description="the order id read from the bytes, or '' when there is none")
    size: int
    sha256: str
    payload_b64: str = Field(description=f"the payload's first {DEAD_LETTER_KEEP_BYTES} bytes, base64")
    truncated: bool

    def payload(self) -> bytes:
        return base64.b64decode(self.payload_b64)


def dead_letter(
    account: str, subject: str, data: bytes, parsed: Parsed, stream_seq: int | None, deliveries: int | None
) -> DeadLetter:
    data = bytes(data)
    assert parsed.refusal is not None
    return DeadLetter(
        account=account,
        subject=subject[:256],
        stream_seq=stream_seq,
        deliveries=deliveries,
        reason=parsed.refusal.message,
        order_id=parsed.reply_order_id,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        payload_b64=base64.b64encode(data[:DEAD_LETTER_KEEP_BYTES]).decode(),
        truncated=len(data) > DEAD_LETTER_KEEP_BYTES,
    )


def answer(account: str, parsed: Parsed) -> bytes:
    """The BrokerError telling the sender of an unreadable message why (with its order id, if readable)."""
    assert parsed.refusal is not None
    return (
        BrokerError(
            order_id=parsed.reply_order_id,
            account=account,
            symbol=parsed.symbol or "_",
            retcode=parsed.refusal.retcode,
            retcode_name="TRADE_RETCODE_INVALID",
            category=ErrorCategory.VALIDATION,
            message=parsed.refusal.message,
        )
        .model_dump_json()
        .encode()
    )


# -- order after a crash ---------------------------------------------------------------------------


class CrashReorder:
    """Keeps an account's orders in publication order after a crash between fetching and journaling.

    A connector killed with messages fetched but not acknowledged leaves them pending in its durable
    consumer; JetStream redelivers them only after ``ack_wait``, and meanwhile delivers newer messages first.
    At start the consumer says how many were pending (``num_ack_pending``) and up to which stream sequence
    the dead run had been delivered: newer messages are held (not processed, not acknowledged) until that
    many of the older ones have come back, then everything is processed in stream order. Only consumer info
    is needed (an agent's bus identity may not read the stream directly). A hold never outlasts
    ``give_up_s`` (a pending message acknowledged meanwhile by someone else must not stall the intake)."""

    def __init__(self, pending: int, delivered_upto: int, give_up_s: float, now: float) -> None:
        self.waiting_for = pending
        self.delivered_upto = delivered_upto
        self.deadline = now + give_up_s
        self.held: dict[int, Any] = {}

    @property
    def active(self) -> bool:
        return self.waiting_for > 0

    def admit(self, msgs: list[Any], now: float) -> list[Any]:
        """The messages to process now, in stream order; the rest are held."""
        if not self.active:
            return msgs
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            if seq <= self.delivered_upto and seq not in self.held:
                self.waiting_for -= 1
            self.held[seq] = msg  # a redelivered copy of a held one replaces it
        if self.waiting_for > 0 and now < self.deadline:
            return []
        self.waiting_for = 0
        ready = [self.held[seq] for seq in sorted(self.held)]
        self.held.clear()
        return ready

    def holding(self) -> list[Any]:
        return list(self.held.values())
