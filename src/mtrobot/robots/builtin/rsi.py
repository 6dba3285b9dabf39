"""RSI mean reversion: buy a recovery from oversold, sell a fall back from overbought, exit at the middle."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from mtrobot.robots.api import Bar, Context, Params, Robot, Side
from mtrobot.robots.indicators import atr, rsi_last


class RsiParams(Params):
    period: int = Field(default=14, ge=2, le=100, description="bars of the RSI (Wilder)")
    oversold: float = Field(default=30.0, ge=1.0, le=49.0, description="buy when the RSI rises back above")
    overbought: float = Field(
        default=70.0, ge=51.0, le=99.0, description="sell when the RSI falls back below"
    )
    exit_level: float = Field(default=50.0, ge=1.0, le=99.0, description="close when the RSI reaches it")
    stop_atr: float = Field(
        default=2.0,
        ge=0.0,
        le=20.0,
        description="stop loss in ATR(14) multiples from the signal close; 0 = none",
    )

    @model_validator(mode="after")
    def _levels_in_order(self) -> Self:
        if not self.oversold < self.exit_level < self.overbought:
            raise ValueError("levels must satisfy oversold < exit_level < overbought")
        return self


class RsiReversion(Robot[RsiParams]):
    """Buys when the RSI climbs back above the oversold level, sells short when it drops back below the
    overbought level, and closes when the RSI reaches the exit level; an optional stop loss at a
    multiple of the ATR(14) from the signal bar's close. One position at a time."""

    name = "rsi_reversion"
    description = "RSI mean reversion: buys out of oversold, sells out of overbought, exits at the middle."
    params_model = RsiParams
    history = 1002

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        p = self.params
        values = rsi_last(ctx.closes(), p.period, 2)
        if len(values) < 2:
            return
        before, now = values
        for position in ctx.positions:
            done = now >= p.exit_level if position.side is Side.BUY else now <= p.exit_level
            if done:
                ctx.close(position)
        if ctx.positions:
            return
        range_ = atr(ctx.bars, 14) if p.stop_atr > 0 else None
        if before < p.oversold <= now:
            ctx.buy(sl=bar.close - p.stop_atr * range_ if range_ else None)
        elif before > p.overbought >= now:
            ctx.sell(sl=bar.close + p.stop_atr * range_ if range_ else None)
