"""The synthetic price model: seeded, wider spreads around the rollover, a gap after the weekend."""

from __future__ import annotations

import datetime as dt
import itertools
import statistics

from mtrobot.sim.config import default_config
from mtrobot.sim.prices import SyntheticFeed
from mtrobot.sim.schedule import Schedule

CONFIG = default_config().servers[0]
EURUSD = CONFIG.symbol("EURUSD")


def server_ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)


def feed(seed: int, start: int) -> SyntheticFeed:
    assert EURUSD is not None
    return SyntheticFeed(EURUSD, seed, start, 1000, 100)


def test_the_same_seed_gives_the_same_ticks_and_another_seed_others() -> None:
    start, schedule = server_ms(2026, 3, 4, 12), Schedule(CONFIG)
    a = feed(1, start).advance_to(start + 600_000, schedule)
    b = feed(1, start).advance_to(start + 600_000, schedule)
    c = feed(2, start).advance_to(start + 600_000, schedule)
    assert len(a) == 600 and a == b and a != c


def test_spreads_widen_around_the_rollover() -> None:
    schedule = Schedule(CONFIG)
    noon = feed(3, server_ms(2026, 3, 4, 12)).advance_to(server_ms(2026, 3, 4, 12, 10), schedule)
    late = feed(3, server_ms(2026, 3, 4, 23, 50)).advance_to(server_ms(2026, 3, 4, 23, 55), schedule)
    spread = lambda ticks: statistics.median(t.ask - t.bid for t in ticks)  # noqa: E731
    assert spread(late) > 2 * spread(noon)


def test_no_ticks_while_closed_and_a_gap_after_the_weekend() -> None:
    schedule = Schedule(CONFIG)
    gaps, moves = [], []
    for seed in range(20):
        f = feed(seed, server_ms(2026, 3, 6, 23, 50))  # Friday 23:50
        ticks = f.advance_to(server_ms(2026, 3, 9, 0, 10), schedule)  # to Monday 00:10
        friday = [t for t in ticks if t.time_msc < server_ms(2026, 3, 7)]
        monday = [t for t in ticks if t.time_msc >= server_ms(2026, 3, 9)]
        assert len(friday) + len(monday) == len(ticks)  # nothing at the weekend
        assert friday[-1].time_msc < server_ms(2026, 3, 6, 23, 55) and monday[0].time_msc >= server_ms(
            2026, 3, 9
        )
        gaps.append(abs(monday[0].bid - friday[-1].bid))
        moves.append(statistics.median(abs(x.bid - y.bid) for x, y in itertools.pairwise(friday)))
    assert statistics.median(gaps) > 5 * statistics.median(moves)
