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


def test_a_trades_utc_time_uses_the_server_offset_a_fresh_fill_teaches() -> None:
    from mtrobot.agent.account_state import FillSeen
    from mtrobot.core.events import Fill

    server = datetime(2026, 12, 2, 9, 9, 42, tzinfo=UTC)  # the server's wall clock, labelled UTC (MT5's way)
    fill = Fill(order_id="o1", account="a", symbol="EURUSD", side="buy", ticket=1, deal=7, position=1,
                volume=0.01, price=1.1, requested_volume=0.01, remaining_volume=0.0, partial=False,
                retcode=10009, broker_time=server, latency_ms=1.0)  # fmt: skip
    state = AccountState("a")
    assert state.apply(FillSeen(fill))  # heard without a clock (a replayed history): no UTC time yet
    assert state.snapshot(1, server).recent_trades[0]["ts"] == ""
    utc_now = datetime(2026, 12, 2, 7, 9, 44, tzinfo=UTC).timestamp()  # 2 s later, the server at UTC+2
    assert state.apply(FillSeen(fill, utc_now))  # the same deal again, but now the offset is known
    row = state.snapshot(2, server).recent_trades[0]
    assert (row["time"], row["ts"]) == ("2026-12-02 09:09:42", "2026-12-02T07:09:42Z")
    assert not state.apply(FillSeen(fill, utc_now + 5))  # nothing new to see
