"""The classic stop-and-reverse moving-average crossover."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from mtrobot.robots.api import Bar, Context, Params, Robot, Side
from mtrobot.robots.indicators import sma


class MaCrossParams(Params):
    fast: int = Field(default=10, ge=2, le=200, description="bars of the fast simple moving average")
    slow: int = Field(default=30, ge=3, le=500, description="bars of the slow simple moving average")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> Self:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be smaller than slow ({self.slow})")
        return self


class MaCross(Robot[MaCrossParams]):
    """When the fast SMA of closes crosses above the slow one, closes any short and buys; when it
    crosses below, closes any long and sells. After the first cross it is always in the market."""

    name = "ma_cross"
    description = "Stop-and-reverse crossover of two simple moving averages of closes."
    params_model = MaCrossParams
    history = 501

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        closes = ctx.closes(self.params.slow + 1)
        if len(closes) <= self.params.slow:
            return
        fast_now, slow_now = sma(closes, self.params.fast), sma(closes, self.params.slow)
        fast_before, slow_before = sma(closes[:-1], self.params.fast), sma(closes[:-1], self.params.slow)
        assert fast_now is not None and slow_now is not None
        assert fast_before is not None and slow_before is not None
        if fast_before <= slow_before and fast_now > slow_now:
            self._reverse_to(ctx, Side.BUY)
        elif fast_before >= slow_before and fast_now < slow_now:
            self._reverse_to(ctx, Side.SELL)

    @staticmethod
    def _reverse_to(ctx: Context, side: Side) -> None:
        ctx.close_all(side.opposite)
        if not ctx.positions_of(side):
            ctx.open(side)
