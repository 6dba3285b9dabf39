"""The account state a trader sees: redundant raw events change nothing, so they cause no snapshot."""

from __future__ import annotations

from datetime import UTC, datetime

from mtrobot.agent.account_state import AccountSeen, AccountState, PositionsSeen, TickSeen
from mtrobot.broker.structures import AccountInfo, TradePosition


def info(equity: float) -> AccountInfo:
    values = dict.fromkeys(AccountInfo._fields, 0)
    values.update(balance=10_000.0, equity=equity, currency="USD", currency_digits=2, name="", server="",
                  company="", margin_level=0.0)  # fmt: skip
    return AccountInfo(**values)


def position(ticket: int, side: int, price: float) -> TradePosition:
    values = dict.fromkeys(TradePosition._fields, 0)
    values.update(ticket=ticket, type=side, volume=0.1, price_open=1.1, price_current=price, symbol="EURUSD",
                  comment="", external_id="")  # fmt: skip
    return TradePosition(**values)


def test_the_same_poll_twice_and_a_tick_on_another_symbol_change_nothing() -> None:
    state = AccountState("a")
    assert state.apply(AccountSeen(info(10_000.004)))
    assert not state.apply(AccountSeen(info(10_000.001)))  # the same to the cent
    assert state.apply(PositionsSeen((position(1, 0, 1.1), position(2, 1, 1.1))))
    assert not state.apply(PositionsSeen((position(1, 0, 1.1), position(2, 1, 1.1))))
    assert not state.apply(TickSeen("GBPUSD", 1.3, 1.3001))
    assert state.apply(TickSeen("EURUSD", 1.2, 1.2001))
    rows = state.snapshot(1, datetime.now(UTC)).positions
    # A buy is valued at the bid, a sell at the ask (as the terminal shows them).
    assert [(r["type"], r["price_current"]) for r in rows] == [("buy", 1.2), ("sell", 1.2001)]
    assert not state.apply(TickSeen("EURUSD", 1.2, 1.2001))


def test_a_pending_order_names_the_platform_order_id_its_comment_tag_carries() -> None:
    from mtrobot.agent.account_state import OrdersSeen
    from mtrobot.broker.structures import TradeOrder
    from mtrobot.core.ids import comment_tag

    def order(ticket: int, comment: str) -> TradeOrder:
        values = dict.fromkeys(TradeOrder._fields, 0)
        values.update(ticket=ticket, symbol="EURUSD", comment=comment, external_id="")
        return TradeOrder(**values)

    hashed = comment_tag("a", "a-much-longer-order-id")
    tags = (comment_tag("a", "w0123456789ab"), hashed, "by hand", "m-bad id")
    state = AccountState("a")
    assert state.apply(OrdersSeen(tuple(order(i + 1, tag) for i, tag in enumerate(tags))))
    rows = state.snapshot(1, datetime.now(UTC)).orders
    assert [r["order_id"] for r in rows] == ["w0123456789ab", "", "", ""]
