"""Averaging into a move against the first entry, with hard limits: a fixed size per level (never a
martingale), a maximum number of levels, a basket take profit and a basket stop."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from mtrobot.robots.api import Bar, Context, Params, Robot, RobotError, Side


class GridParams(Params):
    direction: Literal["long", "short"] = Field(default="long", description="the side the grid trades")
    step_points: int = Field(default=300, ge=10, le=1_000_000, description="distance between levels")
    max_levels: int = Field(default=4, ge=1, le=10, description="positions at most, first entry included")
    take_profit_points: int = Field(
        default=200, ge=10, le=1_000_000, description="close the basket this far beyond its average price"
    )
    basket_stop_points: int = Field(
        default=1500, ge=10, le=10_000_000, description="close the basket this far beyond the first entry"
    )

    @model_validator(mode="after")
    def _stop_beyond_last_level(self) -> Self:
        if self.basket_stop_points <= self.step_points * (self.max_levels - 1):
            raise ValueError(
                "basket_stop_points must lie beyond the last level (step_points × (max_levels - 1))"
            )
        return self


class GridAveraging(Robot[GridParams]):
    """Opens one position in the chosen direction and adds another of the same size each time a close
    is ``step_points`` further against the last entry, up to ``max_levels`` positions; closes them all
    when a close is ``take_profit_points`` beyond their average price, or at the basket stop
    (``basket_stop_points`` beyond the first entry). No martingale: every level has the allocation's
    size. Needs a hedging account (each level is its own position)."""

    name = "grid_averaging"
    description = "Averaging grid with hard limits: fixed size per level, capped levels, basket stop."
    params_model = GridParams
    history = 2

    def on_start(self, ctx: Context) -> None:
        if not ctx.hedging:  # on netting the levels would merge into one position and the limits blur
            raise RobotError("grid_averaging needs a hedging account (each level is its own position)")

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        p = self.params
        side = Side.BUY if p.direction == "long" else Side.SELL
        sign = 1.0 if side is Side.BUY else -1.0
        basket = sorted(ctx.positions_of(side), key=lambda pos: (pos.time, pos.ticket))
        if not basket:
            ctx.open(side)
            return
        volume = sum(pos.volume for pos in basket)
        average = sum(pos.price_open * pos.volume for pos in basket) / volume
        gain_points = sign * (bar.close - average) / ctx.point
        loss_from_first = sign * (basket[0].price_open - bar.close) / ctx.point
        if gain_points >= p.take_profit_points or loss_from_first >= p.basket_stop_points:
            ctx.close_all(side)
            return
        against_last = sign * (basket[-1].price_open - bar.close) / ctx.point
        if len(basket) < p.max_levels and against_last >= p.step_points:
            ctx.open(side)
