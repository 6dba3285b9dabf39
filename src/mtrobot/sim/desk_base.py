"""Shared pieces of the dealing desk: the result of a request and the checks every action uses."""

from __future__ import annotations

from dataclasses import dataclass

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import Tick
from mtrobot.sim.config import SymbolSpec
from mtrobot.sim.money import Leg
from mtrobot.sim.rules import Refuse
from mtrobot.sim.server import VOLUME_EPS, TradeServer
from mtrobot.sim.state import Account, Position


@dataclass
class Outcome:
    retcode: int
    deal: int = 0
    order: int = 0
    volume: float = 0.0
    price: float = 0.0
    bid: float = 0.0
    ask: float = 0.0
    comment: str = ""


class DeskBase:
    def __init__(self, server: TradeServer) -> None:
        self.server = server

    # -- shared gates ----------------------------------------------------------------------------------
    @staticmethod
    def _gate_account(account: Account, can_trade: bool) -> None:
        if not can_trade or not account.trade_allowed:
            raise Refuse(mt5.TRADE_RETCODE_TRADE_DISABLED)
        if not account.trade_expert:
            raise Refuse(mt5.TRADE_RETCODE_SERVER_DISABLES_AT)

    def _spec(self, symbol: str) -> SymbolSpec:
        spec = self.server.specs.get(symbol)
        if spec is None:
            raise Refuse(mt5.TRADE_RETCODE_INVALID, "Invalid request: unknown symbol")
        return spec

    def _market(self, symbol: str) -> Tick:
        if not self.server.market_open(symbol):
            raise Refuse(mt5.TRADE_RETCODE_MARKET_CLOSED)
        tick = self.server.quote(symbol)
        if tick is None or symbol in self.server.faults.quotes_off:
            raise Refuse(mt5.TRADE_RETCODE_PRICE_OFF)
        return tick

    def _position(self, account: Account, ticket: int) -> Position:
        position = account.positions.get(ticket)
        if position is not None:
            return position
        if ticket in account.closed_positions:
            raise Refuse(mt5.TRADE_RETCODE_POSITION_CLOSED)
        raise Refuse(mt5.TRADE_RETCODE_INVALID, "Invalid request: no such position")

    def _check_money(self, account: Account, extra: list[Leg]) -> None:
        if not extra:
            return
        before = self.server.figures(account)
        after = self.server.figures(account, extra)
        if after.margin <= before.margin + 1e-9:
            return  # reducing exposure never needs money
        if after.margin_free < 0:
            raise Refuse(mt5.TRADE_RETCODE_NO_MONEY)
        config = self.server.config
        in_call = (
            config.margin_so_mode == mt5.ACCOUNT_STOPOUT_MODE_PERCENT
            and after.margin_level <= config.margin_call
        )
        if config.margin_call_blocks_new and in_call:  # broker policy: no new exposure in margin call
            raise Refuse(mt5.TRADE_RETCODE_NO_MONEY, "No money: margin call")

    def _comment(self, text: str) -> str:
        return text[: self.server.config.comment_length]

    def _check_opening_limits(self, account: Account, spec: SymbolSpec, buy: bool, volume: float) -> None:
        config = self.server.config
        same_side = [p for p in account.positions.values() if p.symbol == spec.name]
        if not self.server.netting():
            if config.hedge_prohibited and any(p.is_buy != buy for p in same_side):
                raise Refuse(mt5.TRADE_RETCODE_HEDGE_PROHIBITED)
            count = len(account.positions) + len(account.orders)
            if config.limit_positions and count >= config.limit_positions:
                raise Refuse(mt5.TRADE_RETCODE_LIMIT_POSITIONS)
        elif config.limit_positions and not same_side and len(account.positions) >= config.limit_positions:
            raise Refuse(mt5.TRADE_RETCODE_LIMIT_POSITIONS)
        if spec.volume_limit:
            exposure = sum(p.volume for p in same_side if p.is_buy == buy)
            exposure += sum(
                o.volume_current for o in account.orders.values() if o.symbol == spec.name and o.is_buy == buy
            )
            if exposure + volume > spec.volume_limit + VOLUME_EPS:
                raise Refuse(mt5.TRADE_RETCODE_LIMIT_VOLUME)

    def _expiration(self, type_time: int, expiration: int, spec: SymbolSpec) -> int:
        """``time_expiration`` of a pending order (0 = none); on symbols whose GTC orders only live for the
        day (order_gtc_mode 1 and 2) a GTC order also ends with the day."""
        now = self.server.now_ms()
        daily_gtc = type_time == mt5.ORDER_TIME_GTC and spec.order_gtc_mode != mt5.SYMBOL_ORDERS_GTC
        if type_time == mt5.ORDER_TIME_DAY or daily_gtc:
            return self.server.schedule.trading_day_end(now) // 1000
        if type_time == mt5.ORDER_TIME_SPECIFIED:
            return expiration
        if type_time == mt5.ORDER_TIME_SPECIFIED_DAY:
            return expiration - expiration % 86400 + 86399
        return 0
