"""Bars built from ticks, and the indicators the built-in robots use."""

from __future__ import annotations

import itertools

import pytest

from mtrobot.robots.api import Bar
from mtrobot.robots.bars import BarBuilder
from mtrobot.robots.indicators import atr, rsi, rsi_last, sma

H = 3_600_000


def test_a_bar_closes_when_the_first_tick_of_the_next_bar_arrives() -> None:
    builder = BarBuilder("H1", 0.00001)
    assert builder.update(0, 1.1000, 1.1001) is None
    assert builder.update(10_000, 1.1010, 1.1011) is None
    assert builder.update(20_000, 1.0990, 1.0992) is None
    assert builder.update(30_000, 1.1005, 1.1006) is None
    closed = builder.update(H, 1.1007, 1.1008)
    assert closed == Bar(0, 1.1000, 1.1010, 1.0990, 1.1005, 4, 10)
    assert builder.forming() == Bar(3600, 1.1007, 1.1007, 1.1007, 1.1007, 1, 10)


def test_a_gap_of_several_bars_closes_only_the_bar_that_had_ticks() -> None:
    builder = BarBuilder("M15", 0.01)
    builder.update(0, 10.0, 10.1)
    closed = builder.update(5 * H, 11.0, 11.1)
    assert closed is not None and closed.time == 0
    assert builder.forming() is not None and builder.forming().time == 5 * 3600  # type: ignore[union-attr]


def test_a_tick_older_than_the_forming_bar_is_ignored() -> None:
    builder = BarBuilder("H1", 0.01)
    builder.update(2 * H, 10.0, 10.1)
    assert builder.update(H, 99.0, 99.1) is None
    assert builder.forming() == Bar(7200, 10.0, 10.0, 10.0, 10.0, 1, 10)


def test_a_seeded_bar_is_continued_by_later_ticks() -> None:
    builder = BarBuilder("D1", 0.01)
    builder.seed(Bar(0, 10.0, 12.0, 9.0, 11.0, 100, 5))
    builder.update(3 * H, 12.5, 12.6)
    closed = builder.update(24 * H, 12.0, 12.1)
    assert closed == Bar(0, 10.0, 12.5, 9.0, 12.5, 101, 10)


def test_sma_needs_enough_values() -> None:
    assert sma([1.0, 2.0], 3) is None
    assert sma([1.0, 2.0, 3.0, 4.0], 3) == pytest.approx(3.0)


def test_rsi_is_100_after_only_gains_and_50_when_flat() -> None:
    assert rsi([float(i) for i in range(20)], 14) == 100.0
    assert rsi([5.0] * 20, 14) == 50.0
    assert rsi([1.0] * 14, 14) is None


def test_rsi_matches_wilders_recursion_computed_by_hand() -> None:
    closes = [44.0, 44.5, 44.0, 45.0, 45.5, 45.0, 46.0]
    period = 3
    changes = [b - a for a, b in itertools.pairwise(closes)]
    gain = sum(max(c, 0) for c in changes[:period]) / period
    loss = sum(max(-c, 0) for c in changes[:period]) / period
    for c in changes[period:]:
        gain = (gain * (period - 1) + max(c, 0)) / period
        loss = (loss * (period - 1) + max(-c, 0)) / period
    assert rsi(closes, period) == pytest.approx(100 - 100 / (1 + gain / loss))
    assert rsi_last(closes, period, 2)[-1] == pytest.approx(rsi(closes, period))


def test_atr_of_constant_ranges_is_that_range() -> None:
    bars = [Bar(i, 10.0, 10.5, 9.5, 10.0, 1, 0) for i in range(30)]
    assert atr(bars, 14) == pytest.approx(1.0)
    assert atr(bars[:14], 14) is None
