"""A private simulator on a virtual clock (a Wednesday noon, markets open) behind ``mtrobot.mt5``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

import mtrobot.mt5 as mt5
from mtrobot.mt5.target import HISTORY_DAYS, Simulator, embedded
from mtrobot.settings import Settings
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.clock import VirtualClock
from mtrobot.sim.config import default_config

WEDNESDAY_NOON = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def sim() -> Simulator:
    config = default_config().model_copy(update={"history_days": HISTORY_DAYS})
    return embedded(SimBroker(config, VirtualClock(WEDNESDAY_NOON)))


@pytest.fixture
def module(sim: Simulator, tmp_path: Path) -> Iterator[object]:
    """``mtrobot.mt5`` attached to the private simulator, not yet initialised."""
    mt5.configure(simulator=sim, settings=Settings(data_dir=tmp_path / "data"))
    yield mt5
    mt5.shutdown()
