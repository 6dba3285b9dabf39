"""Depth of market (``market_book_add`` / ``market_book_get`` / ``market_book_release``, BookInfo).

A retail OTC broker shows a synthetic book around its own quote: a few levels of sell offers above the ask
and buy offers below the bid. Here the levels are a pure function of the current tick and the broker seed
(same quote, same book), spaced by about half the spread, with volumes that grow away from the top.
Entries come sorted by price descending, sells (BOOK_TYPE_SELL) first, then buys (MT5_REFERENCE.md section
1); there are no book events, a script polls.
"""

from __future__ import annotations

import random

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import BookInfo, Tick
from mtrobot.sim.config import SymbolSpec
from mtrobot.sim.prices import symbol_seed

BOOK_FUNCTIONS: tuple[str, ...] = ("market_book_add", "market_book_get", "market_book_release")
BOOK_DEPTH = 10
"""Levels on each side (``SymbolInfo.ticks_bookdepth``)."""


def book_levels(spec: SymbolSpec, tick: Tick, seed: int, depth: int = BOOK_DEPTH) -> tuple[BookInfo, ...]:
    rng = random.Random(symbol_seed(seed, spec.name, f"book/{tick.time_msc}"))
    step = spec.point * max(1, spec.spread_points // 2)
    sells: list[BookInfo] = []
    buys: list[BookInfo] = []
    for level in range(depth):
        for side, out, price in (
            (mt5.BOOK_TYPE_SELL, sells, tick.ask + level * step),
            (mt5.BOOK_TYPE_BUY, buys, tick.bid - level * step),
        ):
            lots = spec.liquidity_lots * (0.2 + 0.8 * rng.random()) * (1.0 + 0.5 * level)
            lots = max(spec.volume_min, round(round(lots / spec.volume_step) * spec.volume_step, 8))
            out.append(BookInfo(side, round(price, spec.digits), int(lots), float(lots)))
    return (*reversed(sells), *buys)
