"""After an ambiguous outcome: did the broker execute the order? Look before anything is sent again.

The order carries its tag in the MT5 comment and the account/robot magic number; the lookup searches the
broker's active orders, positions, order history and deals on the order's symbol within a wide time window
(server clocks run in the broker's time zone) for that magic and tag. Brokers may shorten comments, and
the tag is at most 16 characters (what the shortest-keeping servers store), so it must match exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mtrobot.broker.structures import TradeDeal, TradeOrder, TradePosition

from .journal import JournalEntry
from .link import BrokerLink

WINDOW_S = 2 * 86400
"""How far around the intent time to search: wide enough for any broker's time zone."""


class LookupUnavailable(Exception):
    """The broker could not be asked (link down): nothing can be concluded yet."""


@dataclass(frozen=True, slots=True)
class Found:
    """What the broker has for one tag. Empty means: not found (yet)."""

    history_orders: tuple[TradeOrder, ...] = ()
    active_orders: tuple[TradeOrder, ...] = ()
    deals: tuple[TradeDeal, ...] = ()
    positions: tuple[TradePosition, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not (self.history_orders or self.active_orders or self.deals or self.positions)


def _tagged(comment: str, tag: str) -> bool:
    # Exact only: "m-abc" is a prefix of "m-abcdef", so a prefix match could claim another order's deal.
    return comment == tag


async def find_by_tag(link: BrokerLink, entry: JournalEntry) -> Found:
    """Everything at the broker that bears ``entry``'s tag and magic on its symbol."""
    tag, magic, symbol = entry.tag, entry.magic, entry.symbol
    since = int((entry.sent_at or entry.created_at) - WINDOW_S)
    until = int(time.time() + WINDOW_S)
    oid = entry.order_id

    hist = await link.call("history_orders_get", since, until, order_id=oid)
    active = await link.call("orders_get", symbol=symbol, order_id=oid)
    deals = await link.call("history_deals_get", since, until, order_id=oid)
    positions = await link.call("positions_get", symbol=symbol, order_id=oid)
    for result in (hist, active, deals, positions):
        if not result.ok:
            raise LookupUnavailable(str(result.error))

    def mine(item: TradeOrder | TradeDeal | TradePosition) -> bool:
        return item.symbol == symbol and item.magic == magic and _tagged(item.comment, tag)

    orders = tuple(o for o in hist.value or () if mine(o))
    tickets = {o.ticket for o in orders}
    return Found(
        history_orders=orders,
        active_orders=tuple(o for o in active.value or () if mine(o)),
        deals=tuple(d for d in deals.value or () if d.order in tickets or mine(d)),
        positions=tuple(p for p in positions.value or () if mine(p)),
    )
