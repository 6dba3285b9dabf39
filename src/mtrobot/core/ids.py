"""Identifiers, each validated once at the boundary and then carried as a plain ``str`` value.

Validation lives in pydantic ``Annotated`` types so that every message model that names an account or an
order id refuses a bad one with an error naming the field.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

from pydantic import StringConstraints

ACCOUNT_ID_PATTERN = r"^[a-z0-9_-]{1,64}$"
ORDER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,24}$"
SYMBOL_PATTERN = r"^[A-Za-z0-9._#+-]{1,32}$"

AccountId = Annotated[str, StringConstraints(pattern=ACCOUNT_ID_PATTERN)]
"""The platform's account id: a NATS-subject-safe token ``[a-z0-9_-]``."""

OrderId = Annotated[str, StringConstraints(pattern=ORDER_ID_PATTERN)]
"""The client's order id: unique per account, at most 24 characters of ``[A-Za-z0-9_-]``."""

Symbol = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)]
"""A broker symbol name such as ``EURUSD`` or ``US500.cash``."""

_ACCOUNT_RE = re.compile(ACCOUNT_ID_PATTERN)
_ORDER_RE = re.compile(ORDER_ID_PATTERN)

COMMENT_TAG_LENGTH = 16
"""Brokers cut comments (a demo server kept 16 characters), so the tag we write is at most this long."""


def is_account_id(value: str) -> bool:
    return bool(_ACCOUNT_RE.fullmatch(value))


def is_order_id(value: str) -> bool:
    return bool(_ORDER_RE.fullmatch(value))


def comment_tag(account: str, order_id: str) -> str:
    """The short, broker-safe tag written into the MT5 comment for ``order_id``.

    An order id of up to 14 characters travels verbatim behind ``m-`` so a human reading the terminal sees
    it; a longer one becomes ``h-`` plus 14 hex characters of a hash bound to the account, which the
    connector can recompute when it searches the broker for an order after an ambiguous outcome. Only
    letters, digits, ``_`` and ``-`` appear: some terminal builds refuse punctuation such as ``:`` in a
    comment (MT5 reference 6.8).
    """
    if len(order_id) <= COMMENT_TAG_LENGTH - 2:
        return f"m-{order_id}"
    digest = hashlib.blake2b(f"{account}/{order_id}".encode(), digest_size=7).hexdigest()
    return f"h-{digest}"


def order_id_of_tag(comment: str) -> str:
    """The order id a broker comment written by :func:`comment_tag` names, when it travels verbatim
    (``m-`` tags); ``""`` for a hashed tag or a comment the platform did not write."""
    order_id = comment[2:] if comment.startswith("m-") else ""
    return order_id if is_order_id(order_id) else ""


def magic_number(account: str, robot: str | None) -> int:
    """A stable magic number per account and robot, in the positive 31-bit range MT5 terminals accept."""
    digest = hashlib.blake2b(f"{account}/{robot or ''}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF or 1
