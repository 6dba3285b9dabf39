"""The broker package's contract: MT5 field layouts, constant values, retcode meanings, backend lookup."""

from __future__ import annotations

import inspect

import pytest

from mtrobot.broker import constants as mt5
from mtrobot.broker.backends import BACKENDS, UnknownBackend, open_terminal, resolve_backend
from mtrobot.broker.retcodes import LAST_ERRORS, TRADE_RETCODES, Reaction, last_error_code, trade_retcode
from mtrobot.broker.structures import STRUCTURES, SymbolInfo, TradeOrder, TradePosition
from mtrobot.broker.terminal import FORBIDDEN_NAMES, TERMINAL_FUNCTIONS, Terminal

FIELD_COUNTS = {
    "AccountInfo": 28,
    "TerminalInfo": 22,
    "SymbolInfo": 96,
    "Tick": 8,
    "BookInfo": 4,
    "TradeOrder": 24,
    "TradePosition": 19,
    "TradeDeal": 18,
    "TradeRequest": 17,
    "OrderCheckResult": 9,
    "OrderSendResult": 11,
}


@pytest.mark.parametrize(("name", "count"), sorted(FIELD_COUNTS.items()))
def test_each_structure_has_the_mt5_number_of_fields(name: str, count: int) -> None:
    assert len(STRUCTURES[name]._fields) == count  # type: ignore[attr-defined]


def test_field_order_follows_the_real_module_not_mt5linux() -> None:
    assert TradeOrder._fields.index("volume_initial") < TradeOrder._fields.index("volume_current")
    assert "position_id" not in TradePosition._fields
    assert SymbolInfo._fields[:3] == ("custom", "chart_mode", "select")
    assert SymbolInfo._fields[31] == "bid" and SymbolInfo._fields[83] == "basis"
    assert SymbolInfo._fields[-1] == "path"


def test_constants_have_the_package_values_and_flags_differ_from_enums() -> None:
    assert (mt5.TRADE_ACTION_DEAL, mt5.TRADE_ACTION_CLOSE_BY) == (1, 10)
    assert (mt5.ORDER_FILLING_FOK, mt5.ORDER_FILLING_IOC, mt5.ORDER_FILLING_RETURN) == (0, 1, 2)
    assert (mt5.SYMBOL_FILLING_FOK, mt5.SYMBOL_FILLING_IOC) == (1, 2)
    assert (mt5.TIMEFRAME_H1, mt5.TIMEFRAME_D1, mt5.TIMEFRAME_W1, mt5.TIMEFRAME_MN1) == (
        1 | 0x4000,
        24 | 0x4000,
        1 | 0x8000,
        1 | 0xC000,
    )
    assert mt5.RES_E_INTERNAL_FAIL_CONNECT == -10004
    assert mt5.COPY_TICKS_ALL == -1


def test_every_retcode_constant_has_a_name_a_reaction_and_a_message() -> None:
    retcodes = {v for k, v in vars(mt5).items() if k.startswith("TRADE_RETCODE_")}
    res = {v for k, v in vars(mt5).items() if k.startswith("RES_")}
    assert retcodes == set(TRADE_RETCODES)
    assert res == set(LAST_ERRORS)
    for info in [*TRADE_RETCODES.values(), *LAST_ERRORS.values()]:
        assert getattr(mt5, info.name) == info.code
        assert info.message.endswith(".") and len(info.message) > 5


def test_outcomes_that_may_have_executed_are_ambiguous() -> None:
    for code in (mt5.TRADE_RETCODE_ERROR, mt5.TRADE_RETCODE_TIMEOUT, mt5.TRADE_RETCODE_CONNECTION):
        assert trade_retcode(code).reaction is Reaction.AMBIGUOUS
    receive = last_error_code(mt5.RES_E_INTERNAL_FAIL_RECEIVE)
    assert receive.reaction_for("order_send") is Reaction.AMBIGUOUS
    assert receive.reaction_for("positions_get") is Reaction.RETRY
    assert last_error_code(mt5.RES_E_INVALID_PARAMS).reaction_for("order_send") is Reaction.FATAL
    assert last_error_code(mt5.RES_E_FAIL).reaction_for("order_send") is Reaction.AMBIGUOUS
    assert last_error_code(mt5.RES_E_INTERNAL_FAIL_CONNECT).reaction_for("order_send") is Reaction.RETRY
    assert trade_retcode(99999).reaction is Reaction.AMBIGUOUS


def test_reactions_follow_the_reference_classes() -> None:
    assert trade_retcode(mt5.TRADE_RETCODE_REQUOTE).reaction is Reaction.RETRY
    assert trade_retcode(mt5.TRADE_RETCODE_MARKET_CLOSED).reaction is Reaction.LATER
    assert trade_retcode(mt5.TRADE_RETCODE_NO_CHANGES).reaction is Reaction.OK_IDEMPOTENT
    assert trade_retcode(mt5.TRADE_RETCODE_INVALID_VOLUME).name == "TRADE_RETCODE_INVALID_VOLUME"
    assert trade_retcode(mt5.TRADE_RETCODE_INVALID_VOLUME).reaction is Reaction.FATAL


def test_the_terminal_protocol_has_every_function_and_nothing_that_moves_money() -> None:
    members = {name for name, _ in inspect.getmembers(Terminal) if not name.startswith("_")}
    assert set(TERMINAL_FUNCTIONS) <= members
    assert not members & FORBIDDEN_NAMES


def test_an_unknown_backend_is_refused_with_the_known_names() -> None:
    with pytest.raises(UnknownBackend) as info:
        open_terminal("metatrader4")
    for name in BACKENDS:
        assert name in str(info.value)


def test_a_backend_whose_module_is_missing_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "ghost", "mtrobot.broker.ghost_backend:open_terminal")
    with pytest.raises(UnknownBackend, match="not available"):
        resolve_backend("ghost")
