"""Account state on a simulated trade server: orders, positions, deals, balance.

Mutable records owned by one :class:`Account`; the outside world only ever sees the MT5 structures built by
``to_struct`` (copies), never these objects.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import TradeDeal, TradeOrder, TradePosition


@dataclass
class Order:
    ticket: int
    symbol: str
    type: int
    volume_initial: float
    volume_current: float
    price_open: float
    time_setup_ms: int
    magic: int = 0
    comment: str = ""
    sl: float = 0.0
    tp: float = 0.0
    price_stoplimit: float = 0.0
    price_current: float = 0.0
    type_time: int = mt5.ORDER_TIME_GTC
    type_filling: int = mt5.ORDER_FILLING_RETURN
    time_expiration: int = 0
    state: int = mt5.ORDER_STATE_PLACED
    position_id: int = 0
    position_by_id: int = 0
    reason: int = mt5.ORDER_REASON_EXPERT
    time_done_ms: int = 0

    @property
    def is_buy(self) -> bool:
        return self.type in (
            mt5.ORDER_TYPE_BUY,
            mt5.ORDER_TYPE_BUY_LIMIT,
            mt5.ORDER_TYPE_BUY_STOP,
            mt5.ORDER_TYPE_BUY_STOP_LIMIT,
        )

    def to_struct(self) -> TradeOrder:
        return TradeOrder(
            self.ticket,
            self.time_setup_ms // 1000,
            self.time_setup_ms,
            self.time_done_ms // 1000,
            self.time_done_ms,
            self.time_expiration,
            self.type,
            self.type_time,
            self.type_filling,
            self.state,
            self.magic,
            self.position_id,
            self.position_by_id,
            self.reason,
            self.volume_initial,
            self.volume_current,
            self.price_open,
            self.sl,
            self.tp,
            self.price_current,
            self.price_stoplimit,
            self.symbol,
            self.comment,
            "",
        )


@dataclass
class Position:
    ticket: int
    identifier: int
    symbol: str
    type: int
    volume: float
    price_open: float
    time_ms: int
    time_update_ms: int
    magic: int = 0
    comment: str = ""
    sl: float = 0.0
    tp: float = 0.0
    price_current: float = 0.0
    swap: float = 0.0
    profit: float = 0.0
    reason: int = mt5.POSITION_REASON_EXPERT

    @property
    def is_buy(self) -> bool:
        return self.type == mt5.POSITION_TYPE_BUY

    def to_struct(self) -> TradePosition:
        return TradePosition(
            self.ticket,
            self.time_ms // 1000,
            self.time_ms,
            self.time_update_ms // 1000,
            self.time_update_ms,
            self.type,
            self.magic,
            self.identifier,
            self.reason,
            self.volume,
            self.price_open,
            self.sl,
            self.tp,
            self.price_current,
            self.swap,
            self.profit,
            self.symbol,
            self.comment,
            "",
        )


@dataclass(frozen=True)
class Deal:
    ticket: int
    order: int
    time_ms: int
    type: int
    entry: int
    magic: int
    position_id: int
    reason: int
    volume: float
    price: float
    commission: float
    swap: float
    profit: float
    symbol: str
    comment: str

    def to_struct(self) -> TradeDeal:
        return TradeDeal(
            self.ticket,
            self.order,
            self.time_ms // 1000,
            self.time_ms,
            self.type,
            self.entry,
            self.magic,
            self.position_id,
            self.reason,
            self.volume,
            self.price,
            self.commission,
            self.swap,
            self.profit,
            0.0,
            self.symbol,
            self.comment,
            "",
        )


SCRYPT_N = 2**10
"""Cost of the account password hashes: a simulator wants many cheap logins, but still salted hashes."""


def _scrypt(password: str, salt: bytes, n: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    return f"scrypt:{SCRYPT_N}:{salt.hex()}:{_scrypt(password, salt, SCRYPT_N).hex()}"


def check_password(password: str, stored: str) -> bool:
    parts = stored.split(":")
    if len(parts) == 4 and parts[0] == "scrypt":
        n, salt_hex, digest_hex = int(parts[1]), parts[2], parts[3]
    else:  # the first format, "salt:digest" at n = 4096
        n, (salt_hex, digest_hex) = 2**12, parts[:2]
    candidate = _scrypt(password, bytes.fromhex(salt_hex), n).hex()
    return hmac.compare_digest(candidate, digest_hex)


@dataclass
class Account:
    login: int
    server: str
    name: str
    currency: str
    leverage: int
    balance: float
    master_hash: str = field(repr=False)
    investor_hash: str = field(repr=False)
    credit: float = 0.0
    currency_digits: int = 2
    trade_allowed: bool = True
    """Server side: the account may trade at all (archived or disabled accounts may not)."""
    trade_expert: bool = True
    """Server side: algorithmic trading allowed (False -> 10026)."""
    positions: dict[int, Position] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    history_orders: list[Order] = field(default_factory=list)
    deals: list[Deal] = field(default_factory=list)
    closed_positions: set[int] = field(default_factory=set)
    """Identifiers of positions that existed and are gone (10036 rather than 10013 for them)."""
    _deal_index: _DealIndex = field(
        default_factory=lambda: _DealIndex(), init=False, repr=False, compare=False
    )

    def deals_of_order(self, ticket: int) -> list[Deal]:
        """The deals of an order (DEAL_ORDER), oldest first, without a scan of the whole history."""
        return list(self._deal_index.of(self.deals).by_order.get(ticket, ()))

    def deals_of_position(self, identifier: int) -> list[Deal]:
        """The deals of a position (DEAL_POSITION_ID), oldest first."""
        return list(self._deal_index.of(self.deals).by_position.get(identifier, ()))

    def authenticate(self, password: str) -> str | None:
        """``"master"``, ``"investor"``, or None for a wrong password."""
        if check_password(password, self.master_hash):
            return "master"
        if check_password(password, self.investor_hash):
            return "investor"
        return None


class _DealIndex:
    """Deals by order and by position, caught up with the (append-only) history when asked: every order
    reads its deals back, and a scan of the whole history made each order slower than the one before."""

    def __init__(self) -> None:
        self._source: list[Deal] | None = None
        self._seen = 0
        self.by_order: dict[int, list[Deal]] = {}
        self.by_position: dict[int, list[Deal]] = {}

    def of(self, deals: list[Deal]) -> _DealIndex:
        if deals is not self._source or len(deals) < self._seen:  # a restored history: index it afresh
            self._source, self._seen = deals, 0
            self.by_order, self.by_position = {}, {}
        for deal in deals[self._seen :]:
            self.by_order.setdefault(deal.order, []).append(deal)
            self.by_position.setdefault(deal.position_id, []).append(deal)
        self._seen = len(deals)
        return self
