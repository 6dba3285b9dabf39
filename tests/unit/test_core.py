from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mtrobot.core.ids import COMMENT_TAG_LENGTH, comment_tag, magic_number
from mtrobot.core.lifecycle import TERMINAL_STATES, TRANSITIONS, IllegalTransition, OrderState, next_state
from mtrobot.core.orders import OrderRequest

BASE = {"order_id": "o1", "account": "demo", "symbol": "EURUSD", "order_type": "buy", "volume": 0.01}


def test_a_market_order_with_defaults_is_valid() -> None:
    req = OrderRequest.model_validate(BASE)
    assert req.action == "open" and req.volume == 0.01


def test_an_unknown_field_is_refused_and_named() -> None:
    with pytest.raises(ValidationError) as err:
        OrderRequest.model_validate({**BASE, "volumee": 1})
    assert "volumee" in str(err.value)


def test_an_order_id_longer_than_24_characters_is_refused() -> None:
    with pytest.raises(ValidationError) as err:
        OrderRequest.model_validate({**BASE, "order_id": "x" * 25})
    assert "order_id" in str(err.value)


def test_a_pending_order_without_price_names_the_price() -> None:
    with pytest.raises(ValidationError, match="price"):
        OrderRequest.model_validate({**BASE, "order_type": "buy_limit"})


def test_requests_are_immutable() -> None:
    req = OrderRequest.model_validate(BASE)
    with pytest.raises(ValidationError):
        req.volume = 1.0  # type: ignore[misc]


def test_terminal_states_allow_no_transition() -> None:
    for state in TERMINAL_STATES:
        assert TRANSITIONS[state] == frozenset()


def test_an_illegal_transition_raises() -> None:
    with pytest.raises(IllegalTransition):
        next_state(OrderState.FILLED, OrderState.SENT)


def test_unknown_resolves_only_to_states_after_sending() -> None:
    assert OrderState.SENT not in TRANSITIONS[OrderState.UNKNOWN]
    assert next_state(OrderState.UNKNOWN, OrderState.FILLED) is OrderState.FILLED


def test_every_state_can_reach_a_terminal_state() -> None:
    for start in OrderState:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in TRANSITIONS[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert seen & TERMINAL_STATES, start


@given(
    st.from_regex(r"[A-Za-z0-9_-]{1,24}", fullmatch=True), st.from_regex(r"[a-z0-9_-]{1,20}", fullmatch=True)
)
def test_comment_tags_are_short_safe_and_stable(order_id: str, account: str) -> None:
    tag = comment_tag(account, order_id)
    assert len(tag) <= COMMENT_TAG_LENGTH
    assert all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in tag)
    assert tag == comment_tag(account, order_id)


def test_magic_numbers_differ_per_robot_and_fit_31_bits() -> None:
    a, b = magic_number("acc", "trend"), magic_number("acc", "grid")
    assert a != b and 0 < a < 2**31 and 0 < b < 2**31
