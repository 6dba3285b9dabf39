"""The robots that ship with mtrobot (see docs/robots.md for what each does)."""

from __future__ import annotations

from typing import Any

from mtrobot.robots.api import Robot
from mtrobot.robots.builtin.breakout import AtrBreakout
from mtrobot.robots.builtin.grid import GridAveraging
from mtrobot.robots.builtin.ma_cross import MaCross
from mtrobot.robots.builtin.rsi import RsiReversion

BUILTIN: tuple[type[Robot[Any]], ...] = (MaCross, RsiReversion, AtrBreakout, GridAveraging)
