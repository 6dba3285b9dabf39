"""Validation before sending: schema (fields named), volume, stops level, trade mode, market hours."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from typing import Any

import pytest

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import SymbolInfo, Tick, TradePosition
from mtrobot.broker.trade_request import Market
from mtrobot.connector.validation import TradingSession, check_request, parse
from mtrobot.core.orders import OrderRequest


def symbol(**over: Any) -> SymbolInfo:
    values: dict[str, Any] = {}
    for name, kind in SymbolInfo.__annotations__.items():
        values[name] = "" if kind == "str" else False if kind == "bool" else 0
    values.update(
        name="EURUSD",
        digits=5,
        point=0.00001,
        volume_min=0.01,
        volume_max=100.0,
        volume_step=0.01,
        trade_mode=mt5.SYMBOL_TRADE_MODE_FULL,
        trade_stops_level=10,
        filling_mode=1,
    )
    values.update(over)
    return SymbolInfo(**values)


TICK = Tick(time=0, bid=1.10000, ask=1.10010, last=0.0, volume=0, time_msc=0, flags=0, volume_real=0.0)


def order(**over: Any) -> OrderRequest:
    base: dict[str, Any] = {
        "order_id": "o1",
        "account": "acc1",
        "symbol": "EURUSD",
        "order_type": "buy",
        "volume": 0.1,
    }
    return OrderRequest.model_validate(base | over)


def refuse(req: OrderRequest, info: SymbolInfo | None = None, **kw: Any) -> tuple[int, str] | None:
    r = check_request(req, Market(info or symbol(), TICK, kw.pop("position", None)), **kw)
    return (r.retcode, r.message) if r else None


def test_an_unknown_field_is_named_in_the_refusal() -> None:
    p = parse(
        json.dumps(
            {
                "order_id": "o1",
                "account": "acc1",
                "symbol": "EURUSD",
                "order_type": "buy",
                "volume": 0.1,
                "lots": 3,
            }
        ).encode(),
        "acc1",
        "EURUSD",
    )
    assert p.request is None and p.order_id == "o1"
    assert p.refusal is not None and "unknown field 'lots'" in p.refusal.message


def test_a_missing_field_is_named_in_the_refusal() -> None:
    p = parse(
        json.dumps({"order_id": "o1", "account": "acc1", "order_type": "buy", "volume": 0.1}).encode(),
        "acc1",
        "EURUSD",
    )
    assert p.refusal is not None and "missing field 'symbol'" in p.refusal.message


def test_a_payload_that_is_not_json_is_refused_without_an_order_id() -> None:
    p = parse(b"{not json", "acc1", "EURUSD")
    assert p.order_id is None and p.refusal is not None and "not JSON" in p.refusal.message


def test_an_order_for_another_account_is_refused_naming_the_account_field() -> None:
    p = parse(
        json.dumps(
            {"order_id": "o1", "account": "other", "symbol": "EURUSD", "order_type": "buy", "volume": 0.1}
        ).encode(),
        "acc1",
        "EURUSD",
    )
    assert p.refusal is not None and "'account'" in p.refusal.message


@pytest.mark.parametrize(
    ("volume", "words"),
    [(0.001, "below the minimum"), (150.0, "above the maximum"), (0.015, "not a multiple")],
)
def test_volume_outside_min_max_or_step_is_refused(volume: float, words: str) -> None:
    r = refuse(order(volume=volume))
    assert r is not None and r[0] == 10014 and words in r[1]


def test_a_stop_loss_closer_than_the_stops_level_is_refused() -> None:
    r = refuse(order(sl=1.10005))  # 5 points under ask, level 10
    assert r is not None and r[0] == 10016


def test_a_stop_loss_on_the_wrong_side_is_refused() -> None:
    r = refuse(order(sl=1.2))
    assert r is not None and r[0] == 10016 and "below" in r[1]


def test_stops_far_enough_pass() -> None:
    assert refuse(order(sl=1.09000, tp=1.11000)) is None


def test_a_buy_limit_above_the_market_is_refused() -> None:
    r = refuse(order(order_type="buy_limit", price=1.2))
    assert r is not None and r[0] == 10015


@pytest.mark.parametrize(
    ("mode", "side", "code"),
    [
        (mt5.SYMBOL_TRADE_MODE_DISABLED, "buy", 10017),
        (mt5.SYMBOL_TRADE_MODE_LONGONLY, "sell", 10042),
        (mt5.SYMBOL_TRADE_MODE_SHORTONLY, "buy", 10043),
        (mt5.SYMBOL_TRADE_MODE_CLOSEONLY, "buy", 10044),
    ],
)
def test_the_symbol_trade_mode_is_respected(mode: int, side: str, code: int) -> None:
    r = refuse(order(order_type=side), symbol(trade_mode=mode))
    assert r is not None and r[0] == code


def test_an_order_outside_the_configured_market_hours_is_refused() -> None:
    weekdays_only = (TradingSession(frozenset(range(5)), time(0, 0), time(23, 59)),)
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    r = refuse(order(), sessions=weekdays_only, now=saturday)
    assert r is not None and r[0] == 10018
    assert refuse(order(), sessions=weekdays_only, now=datetime(2026, 11, 24, 12, 0, tzinfo=UTC)) is None


def test_an_unknown_symbol_is_refused() -> None:
    r = check_request(order(), Market(None, None))
    assert r is not None and "does not offer" in r.message


def test_closing_more_than_the_position_holds_is_refused() -> None:
    pos = TradePosition(
        ticket=9,
        time=0,
        time_msc=0,
        time_update=0,
        time_update_msc=0,
        type=0,
        magic=1,
        identifier=9,
        reason=3,
        volume=0.1,
        price_open=1.1,
        sl=0,
        tp=0,
        price_current=1.1,
        swap=0,
        profit=0,
        symbol="EURUSD",
        comment="",
        external_id="",
    )
    r = refuse(order(action="close", position=9, volume=0.5, order_type=None), position=pos)
    assert r is not None and r[0] == 10038


def test_closing_a_position_under_another_symbol_is_refused_naming_the_symbol_field() -> None:
    pos = TradePosition(
        ticket=9,
        time=0,
        time_msc=0,
        time_update=0,
        time_update_msc=0,
        type=0,
        magic=1,
        identifier=9,
        reason=3,
        volume=0.1,
        price_open=1.1,
        sl=0,
        tp=0,
        price_current=1.1,
        swap=0,
        profit=0,
        symbol="GBPUSD",
        comment="",
        external_id="",
    )
    r = refuse(order(action="close", position=9, order_type=None), position=pos)
    assert r is not None and "'symbol'" in r[1] and "GBPUSD" in r[1]


@pytest.mark.parametrize("bad", ["", "EUR USD", "a>b", 42])
def test_an_unusable_symbol_never_becomes_part_of_a_subject(bad: object) -> None:
    p = parse(
        json.dumps(
            {"order_id": "o1", "account": "acc1", "symbol": bad, "order_type": "buy", "volume": 0.1}
        ).encode(),
        "acc1",
        "EURUSD",
    )
    assert p.refusal is not None and p.symbol == "EURUSD"
