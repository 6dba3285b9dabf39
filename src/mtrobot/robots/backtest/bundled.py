"""The bundled price data: synthetic, generated here, deterministically, and shipped as package data.

``EURUSD_H1.csv`` is NOT market data. It is a seeded random walk (seed 20240101) written in MT5's
"Export bars" format, so that every robot can be backtested on a fresh install without a download, and
so that two runs of the same backtest are byte-identical. The model, per 5-minute step: a log-return
with GARCH(1,1)-like volatility clustering, an intraday volatility profile (quiet in the Asian session,
busiest at the London / New York overlap) and a weak pull towards a slowly drifting anchor, so the
series trends at times and ranges at others. Bars are H1 from Monday 00:00 to Friday 23:00 (server
time) through 2024, the spread (points) is drawn per bar around 9 points, wider at the rollover.

Regenerate with ``python -m mtrobot.robots.backtest.bundled`` (a test checks that the shipped file is
exactly what this module writes).
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

HEADER = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"
BUNDLED: dict[tuple[str, str], str] = {("EURUSD", "H1"): "EURUSD_H1.csv"}
SEED = 20240101
START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2025, 1, 1, tzinfo=UTC)
STEPS_PER_BAR = 12


def bundled_path(symbol: str, timeframe: str) -> Path | None:
    """The shipped file for ``symbol`` and ``timeframe``, if there is one."""
    name = BUNDLED.get((symbol, timeframe))
    if name is None:
        return None
    return Path(str(resources.files("mtrobot.robots.data").joinpath(name)))


def _session_factor(hour: int) -> float:
    if 13 <= hour < 17:  # London / New York overlap
        return 1.5
    if 7 <= hour < 13 or 17 <= hour < 21:
        return 1.1
    return 0.6


def generate_eurusd_h1() -> str:
    rng = random.Random(SEED)
    price, anchor, variance = 1.10400, 1.10400, 1.0
    lines = [HEADER]
    moment = START
    while moment < END:
        if moment.weekday() < 5:  # Monday..Friday
            factor = _session_factor(moment.hour)
            open_ = price
            high = low = price
            for _ in range(STEPS_PER_BAR):
                shock = rng.gauss(0.0, 1.0)
                variance = 0.02 + 0.08 * shock * shock + 0.90 * variance
                sigma = 0.00018 * factor * math.sqrt(variance)
                pull = 0.002 * math.log(anchor / price)
                price *= math.exp(pull + sigma * shock)
                high, low = max(high, price), min(low, price)
            anchor *= math.exp(rng.gauss(0.0, 0.0012))
            spread = max(5, round(rng.gauss(9.0, 1.5))) * (3 if moment.hour == 23 else 1)
            tick_volume = int(400 * factor * math.sqrt(variance) + rng.randrange(100))
            lines.append(
                f"{moment:%Y.%m.%d}\t{moment:%H:%M:%S}\t{open_:.5f}\t{high:.5f}\t{low:.5f}\t{price:.5f}"
                f"\t{tick_volume}\t0\t{spread}"
            )
        moment += timedelta(hours=1)
    return "\n".join(lines) + "\n"


def main() -> None:
    path = Path(__file__).resolve().parent.parent / "data" / BUNDLED[("EURUSD", "H1")]
    path.write_text(generate_eurusd_h1(), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
