"""One account's state as a trader sees it, rebuilt from raw events; pure, no I/O.

The aggregator turns everything it hears (account and position polls of the terminal, ticks, fills, the
session's connection state, the robots' states) into the events below and applies them here. ``apply``
answers whether anything a trader can see changed, so redundant updates (the same equity polled twice, a tick
that moves no open position) never cause a snapshot. Replaying the same events on a fresh state gives the same
state: that is how the aggregator's last snapshot is checked against the raw events.

Entries of the snapshot's lists (their field names are what the pages and the API read):

- position: ``ticket, symbol, type ("buy"|"sell"), volume, price_open, price_current, sl, tp, profit, swap,
  magic, comment, time`` (times are the trade server's clock, ``YYYY-MM-DD HH:MM:SS``);
- order (pending, at the broker): ``ticket, symbol, type ("buy_limit", ...), volume, price_open,
  price_stoplimit, sl, tp, magic, comment, time, order_id`` (the platform's order id, read from the comment
  tag; ``""`` for an order placed outside the platform or with a hashed tag: what a cancel names);
- recent trade (newest first, at most ``RECENT_TRADES``): ``deal, order_id, symbol, side, volume, price,
  profit, commission, swap, position, time, ts``: ``time`` is the trade server's clock as above, ``ts`` the
  same instant in UTC (RFC 3339, what a page shows in the trader's own time zone), ``""`` while the
  server's offset from UTC is not known yet.

The server's offset from UTC is learnt from a fill as it arrives (``FillSeen.utc_s``): its deal time is the
server's clock, and it happened moments ago; offsets are whole quarter hours, so the rounding absorbs the
delay. It is learnt again with every fill, so a daylight-saving change follows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import AccountInfo, TradeDeal, TradeOrder, TradePosition
from mtrobot.broker.trade_request import ORDER_TYPES
from mtrobot.core.events import AccountSnapshot, ConnectionState, Fill
from mtrobot.core.ids import order_id_of_tag

RECENT_TRADES = 20
OFFSET_STEP_S = 900
"""Trade servers' offsets from UTC are whole quarter hours."""
_TYPE_NAMES = {code: kind.value for kind, code in ORDER_TYPES.items()}


@functools.lru_cache(maxsize=1024)  # every poll formats each open position's and order's time again
def server_time(seconds: int) -> str:
    """An MT5 time (the trade server's wall clock, as epoch seconds) as the terminal shows it."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


# --- raw events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountSeen:
    info: AccountInfo


@dataclass(frozen=True, slots=True)
class PositionsSeen:
    positions: tuple[TradePosition, ...]


@dataclass(frozen=True, slots=True)
class OrdersSeen:
    orders: tuple[TradeOrder, ...]


@dataclass(frozen=True, slots=True)
class TickSeen:
    symbol: str
    bid: float
    ask: float


@dataclass(frozen=True, slots=True)
class FillSeen:
    """A fill as it arrives; ``utc_s`` is our UTC clock then (it teaches the server's offset from UTC)."""

    fill: Fill
    utc_s: float | None = None


@dataclass(frozen=True, slots=True)
class DealsSeen:
    """The broker's deal history (read at start, so recent trades survive an agent restart)."""

    deals: tuple[TradeDeal, ...]


@dataclass(frozen=True, slots=True)
class ConnectionSeen:
    connection: ConnectionState


@dataclass(frozen=True, slots=True)
class RobotsSeen:
    robots: tuple[dict[str, Any], ...]


RawEvent = (
    AccountSeen | PositionsSeen | OrdersSeen | TickSeen | FillSeen | DealsSeen | ConnectionSeen | RobotsSeen
)


# --- rows -------------------------------------------------------------------------------------------


def position_row(p: TradePosition, digits: int) -> dict[str, Any]:
    return {
        "ticket": p.ticket,
        "symbol": p.symbol,
        "type": "buy" if p.type == mt5.POSITION_TYPE_BUY else "sell",
        "volume": p.volume,
        "price_open": p.price_open,
        "price_current": p.price_current,
        "sl": p.sl,
        "tp": p.tp,
        "profit": round(p.profit, digits),
        "swap": round(p.swap, digits),
        "magic": p.magic,
        "comment": p.comment,
        "time": server_time(p.time),
    }


def order_row(o: TradeOrder) -> dict[str, Any]:
    return {
        "ticket": o.ticket,
        "symbol": o.symbol,
        "type": _TYPE_NAMES.get(o.type, str(o.type)),
        "volume": o.volume_current,
        "price_open": o.price_open,
        "price_stoplimit": o.price_stoplimit,
        "sl": o.sl,
        "tp": o.tp,
        "magic": o.magic,
        "comment": o.comment,
        "time": server_time(o.time_setup),
        "order_id": order_id_of_tag(o.comment),
    }


def fill_row(f: Fill) -> dict[str, Any]:
    return {
        "deal": f.deal,
        "order_id": f.order_id,
        "symbol": f.symbol,
        "side": f.side,
        "volume": f.volume,
        "price": f.price,
        "profit": f.profit,
        "commission": f.commission,
        "swap": f.swap,
        "position": f.position,
        "time": f.broker_time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def deal_row(d: TradeDeal) -> dict[str, Any] | None:
    if d.type not in (mt5.DEAL_TYPE_BUY, mt5.DEAL_TYPE_SELL):
        return None  # balance operations, credit, ...: not trades
    return {
        "deal": d.ticket,
        "order_id": "",
        "symbol": d.symbol,
        "side": "buy" if d.type == mt5.DEAL_TYPE_BUY else "sell",
        "volume": d.volume,
        "price": d.price,
        "profit": d.profit,
        "commission": d.commission,
        "swap": d.swap,
        "position": d.position_id,
        "time": server_time(d.time),
    }


# --- the state --------------------------------------------------------------------------------------


@dataclass
class AccountState:
    """What the snapshot shows; ``apply`` returns whether any of it changed."""

    account: str
    connection: ConnectionState = ConnectionState.CONNECTING
    money: dict[str, Any] = field(default_factory=dict)
    positions: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    trades: dict[int, dict[str, Any]] = field(default_factory=dict)
    robots: tuple[dict[str, Any], ...] = ()
    server_offset_s: int | None = None

    def apply(self, event: RawEvent) -> bool:
        """Apply one raw event; ``True`` if anything a snapshot shows changed."""
        match event:
            case AccountSeen(info):
                return self._replace("money", _money(info))
            case PositionsSeen(positions):
                digits = int(self.money.get("digits", 2))
                return self._replace("positions", {p.ticket: position_row(p, digits) for p in positions})
            case OrdersSeen(orders):
                return self._replace("orders", {o.ticket: order_row(o) for o in orders})
            case TickSeen(symbol, bid, ask):
                return self._tick(symbol, bid, ask)
            case FillSeen(fill, utc_s):
                clock = utc_s is not None and self._learn_offset(fill.broker_time.timestamp() - utc_s)
                return self._add_trade(fill_row(fill)) or (clock and bool(self.trades))
            case DealsSeen(deals):
                rows = [r for r in map(deal_row, deals) if r is not None and r["deal"] not in self.trades]
                return any([self._add_trade(r) for r in rows])
            case ConnectionSeen(connection):
                return self._replace("connection", connection)
            case RobotsSeen(robots):
                return self._replace("robots", robots)
        return False  # pragma: no cover - every event type is matched above

    def _replace(self, name: str, value: Any) -> bool:
        if getattr(self, name) == value:
            return False
        setattr(self, name, value)
        return True

    def _learn_offset(self, seconds: float) -> bool:
        return self._replace("server_offset_s", round(seconds / OFFSET_STEP_S) * OFFSET_STEP_S)

    def _tick(self, symbol: str, bid: float, ask: float) -> bool:
        changed = False
        for row in self.positions.values():
            if row["symbol"] == symbol:
                price = bid if row["type"] == "buy" else ask
                if row["price_current"] != price:
                    row["price_current"] = price
                    changed = True
        return changed

    def _add_trade(self, row: dict[str, Any]) -> bool:
        known = self.trades.get(row["deal"])
        if known == row or (known is not None and known["order_id"] and not row["order_id"]):
            return False  # a repeat, or the history telling less (no order id) than the fill did
        self.trades[row["deal"]] = row
        if len(self.trades) > RECENT_TRADES:
            for deal in sorted(self.trades)[: len(self.trades) - RECENT_TRADES]:
                del self.trades[deal]
        return row["deal"] in self.trades

    def visible(self) -> tuple[Any, ...]:
        """Everything a snapshot shows, as one comparable value."""
        return (
            self.connection,
            tuple(sorted(self.money.items())),
            tuple(tuple(sorted(r.items())) for _, r in sorted(self.positions.items())),
            tuple(tuple(sorted(r.items())) for _, r in sorted(self.orders.items())),
            tuple(tuple(sorted(r.items())) for _, r in sorted(self.trades.items())),
            repr(self.robots),
            self.server_offset_s,
        )

    @property
    def exposed(self) -> bool:
        """Open positions or pending orders: equity moves with every tick, so polls come often."""
        return bool(self.positions or self.orders)

    def _with_utc(self, row: dict[str, Any]) -> dict[str, Any]:
        return row | {"ts": _utc(row["time"], self.server_offset_s)}

    def snapshot(self, seq: int, ts: datetime) -> AccountSnapshot:
        m = self.money
        return AccountSnapshot(
            seq=seq,
            ts=ts,
            account=self.account,
            connection=self.connection,
            currency=str(m.get("currency", "")),
            balance=float(m.get("balance", 0.0)),
            equity=float(m.get("equity", 0.0)),
            margin=float(m.get("margin", 0.0)),
            free_margin=float(m.get("free_margin", 0.0)),
            margin_level=float(m.get("margin_level", 0.0)),
            profit=float(m.get("profit", 0.0)),
            positions=[dict(r) for _, r in sorted(self.positions.items())],
            orders=[dict(r) for _, r in sorted(self.orders.items())],
            recent_trades=[self._with_utc(r) for _, r in sorted(self.trades.items(), reverse=True)],
            robots=[dict(r) for r in self.robots],
        )


def _utc(server: str, offset_s: int | None) -> str:
    if offset_s is None:
        return ""
    instant = datetime.strptime(server, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return (instant - timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")


def _money(info: AccountInfo) -> dict[str, Any]:
    digits = info.currency_digits if 0 <= info.currency_digits <= 8 else 2
    return {
        "currency": info.currency,
        "digits": digits,
        "balance": round(info.balance, digits),
        "equity": round(info.equity, digits),
        "margin": round(info.margin, digits),
        "free_margin": round(info.margin_free, digits),
        "margin_level": round(info.margin_level, 2),
        "profit": round(info.profit, digits),
    }
