"""A channel breakout with ATR stops."""

from __future__ import annotations

from pydantic import Field

from mtrobot.robots.api import Bar, Context, Params, Robot, Side
from mtrobot.robots.indicators import atr, highest_high, lowest_low


class BreakoutParams(Params):
    lookback: int = Field(default=20, ge=2, le=500, description="bars of the channel before the signal bar")
    atr_period: int = Field(default=14, ge=2, le=200, description="bars of the ATR (Wilder)")
    stop_atr: float = Field(default=2.0, gt=0.0, le=20.0, description="stop loss in ATR multiples")
    target_atr: float = Field(
        default=4.0, ge=0.0, le=50.0, description="take profit in ATR multiples; 0 = none"
    )


class AtrBreakout(Robot[BreakoutParams]):
    """Buys when a bar closes above the highest high of the previous ``lookback`` bars, sells when one
    closes below their lowest low; the stop loss and take profit are ATR multiples from that close. One
    position at a time; an opposite breakout closes it and reverses."""

    name = "breakout_atr"
    description = "Channel breakout with stop loss and take profit at multiples of the ATR."
    params_model = BreakoutParams
    history = 1000

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        p = self.params
        bars = ctx.bars
        if len(bars) < max(p.lookback, p.atr_period) + 2:
            return
        channel = bars[-p.lookback - 1 : -1]
        range_ = atr(bars, p.atr_period)
        assert range_ is not None
        target = p.target_atr * range_
        if bar.close > highest_high(channel):
            side, stop, take = Side.BUY, bar.close - p.stop_atr * range_, bar.close + target
        elif bar.close < lowest_low(channel):
            side, stop, take = Side.SELL, bar.close + p.stop_atr * range_, bar.close - target
        else:
            return
        if ctx.positions_of(side):
            return
        ctx.close_all(side.opposite)
        tp = take if target > 0 else None
        ctx.open(side, sl=stop, tp=tp)
