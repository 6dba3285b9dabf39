"""The intake: strict JSON, no coercion, the subject's symbol, plain words, and nothing that raises."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtrobot.connector.intake import dead_letter, read_order
from mtrobot.connector.validation import check_volume
from mtrobot.core.strict import StrictJSONError, loads, number_text

from .test_validation import symbol

ACC = "acc1"


def body(**over: Any) -> dict[str, Any]:
    return {"order_id": "o1", "account": ACC, "symbol": "EURUSD", "order_type": "buy", "volume": 0.1} | over


def read(payload: bytes | dict[str, Any], subject_symbol: str = "EURUSD") -> Any:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return read_order(data, ACC, subject_symbol)


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"[" * 30_000 + b"]" * 30_000, "nested"),
        (b'{"order_id": "o1", "position": ' + b"9" * 5000 + b"}", "5000 digits"),
        (b'{"order_id": "o1", "volume": \xff\xfe}', "UTF-8"),
        (b'{"order_id": "o1", "volume": NaN}', "not a number"),
        (b'{"order_id": "o1", "volume": 1e400}', "too large"),
        (b'{"order_id": "o1", "volume": 0.1, "volume": 5}', "'volume' is given more than once"),
        (b"", "empty"),
        (b"{not json", "not JSON"),
        (b"x" * 70_000, "bytes, more than the limit"),
        (b"\x00\x01\x02", "not JSON"),
        (b'{"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}', "nested"),
    ],
)
def test_an_unreadable_payload_is_a_refusal_never_an_exception(payload: bytes, words: str) -> None:
    p = read(payload)
    assert p.unreadable and p.request is None and p.refusal is not None
    assert words in p.refusal.message, p.refusal.message
    assert len(p.refusal.message) < 200


def test_the_order_id_of_an_unreadable_payload_is_read_from_its_bytes_for_the_answer() -> None:
    p = read(b'{"order_id": "abc-1", "volume": 0.1, "volume": 0.2}')
    assert p.unreadable and p.reply_order_id == "abc-1"
    letter = dead_letter(ACC, "orders.submitted.acc1.EURUSD", b"{x", read(b"{x"), 7, 1)
    assert letter.payload() == b"{x" and letter.stream_seq == 7 and letter.order_id == ""


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("volume", True, "field 'volume' must be a number"),
        ("volume", "0.01", "field 'volume' must be a number"),
        ("volume", 1e308, "field 'volume' must be 1000000 or less"),
        ("volume", -1, "field 'volume' must be more than 0"),
        ("price", "1.1", "field 'price' must be a number"),
        ("deviation", True, "field 'deviation' must be a whole number"),
        ("deviation", 5.0, "field 'deviation' must be a whole number"),
        ("position", 2**70, "field 'position' must be 9223372036854775807 or less"),
        ("ticket", "12", "field 'ticket' must be a whole number"),
        ("magic", False, "field 'magic' must be a whole number"),
        ("submitted_at", 0, "field 'submitted_at' must be a date and time"),
        ("order_type", 1, "field 'order_type' must be one of"),
        ("comment", 5, "field 'comment' must be text"),
        ("lots", 1, "unknown field 'lots'"),
    ],
)
def test_no_field_is_coerced_and_the_refusal_names_it(field: str, value: Any, words: str) -> None:
    p = read(body(**{field: value}))
    assert p.request is None and p.refusal is not None and p.order_id == "o1"
    assert words in p.refusal.message, p.refusal.message
    assert "309" not in p.refusal.message and len(p.refusal.message) < 300


def test_a_whole_number_is_a_valid_volume_and_an_rfc3339_time_is_read() -> None:
    p = read(body(volume=1, submitted_at="2026-01-02T03:04:05Z"))
    assert p.request is not None and p.request.volume == 1.0 and p.request.submitted_at is not None


def test_the_subject_symbol_must_be_the_payload_symbol() -> None:
    p = read(body(), subject_symbol="GBPUSD")
    assert p.request is None and p.refusal is not None and p.order_id == "o1"
    assert "field 'symbol' is 'EURUSD'" in p.refusal.message and "GBPUSD" in p.refusal.message
    assert read(body(symbol="US500.cash"), subject_symbol="US500.cash").request is not None


def test_volume_words_never_say_zero_or_print_hundreds_of_digits() -> None:
    refusal = check_volume(1e-12, symbol())
    assert refusal is not None and "Volume 0 " not in refusal.message and "1e-12" in refusal.message
    assert number_text(1e308) == "1e+308" and number_text(0.01) == "0.01" and number_text(123.5) == "123.5"


def test_strict_loads_bounds_depth_size_and_numbers() -> None:
    assert loads(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    for bad in (b'{"a": 1, "a": 1}', b"[" * 20 + b"]" * 20, b"-" + b"1" * 65, b"Infinity"):
        with pytest.raises(StrictJSONError):
            loads(bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512) | st.text(max_size=256).map(str.encode))
def test_any_bytes_are_read_without_raising(data: bytes) -> None:
    p = read_order(data, ACC, "EURUSD")
    assert (p.request is None) == (p.refusal is not None)
