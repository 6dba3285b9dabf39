"""The dealing desk of a simulated trade server: order_check and order_send for every trade action.

Checks run in the order of MT5_REFERENCE.md 6.1 and raise :class:`~mtrobot.sim.rules.Refuse`; nothing is
changed until every check has passed, so a refused request leaves no trace except its answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from mtrobot.broker import constants as mt5
from mtrobot.broker.retcodes import retcode_comment
from mtrobot.broker.structures import OrderCheckResult, Tick, TradeRequest
from mtrobot.sim import rules
from mtrobot.sim.config import SymbolSpec
from mtrobot.sim.desk_base import Outcome
from mtrobot.sim.desk_orders import OrderActions
from mtrobot.sim.money import Leg
from mtrobot.sim.rules import Refuse
from mtrobot.sim.server import VOLUME_EPS, vround
from mtrobot.sim.state import Account, Order, Position


@dataclass
class DealPlan:
    spec: SymbolSpec
    buy: bool
    volume: float
    position: Position | None
    tick: Tick
    extra: list[Leg]


class Desk(OrderActions):
    """order_check and order_send of one trade server (market deals here; the rest in OrderActions)."""

    # -- entry points ----------------------------------------------------------------------------------
    def check(self, account: Account, sent: TradeRequest, can_trade: bool) -> OrderCheckResult:
        req = self._normalised(account, sent)
        extra: list[Leg] = []
        retcode = mt5.TRADE_RETCODE_CHECK_OK
        try:
            self._gate_account(account, can_trade)
            if req.action == mt5.TRADE_ACTION_DEAL:
                extra = self._plan_deal(account, req).extra
            self._validate(account, req)
        except Refuse as refusal:
            retcode = refusal.retcode
        fig = self.server.figures(account, extra)
        if retcode == 0 and extra and fig.margin_free < 0:
            retcode = mt5.TRADE_RETCODE_NO_MONEY
        return OrderCheckResult(
            retcode,
            account.balance,
            fig.equity,
            fig.profit,
            fig.margin,
            fig.margin_free,
            fig.margin_level,
            retcode_comment(retcode),
            sent,
        )

    def send(self, account: Account, sent: TradeRequest, can_trade: bool) -> Outcome:
        req = self._normalised(account, sent)
        try:
            self._gate_account(account, can_trade)
            faults = self.server.faults
            if faults.reject_next > 0:
                faults.reject_next -= 1
                if faults.reject_execute:  # executed, but the server answers as if it might not have been
                    self._execute(account, req)
                raise Refuse(faults.reject_retcode)
            outcome = self._execute(account, req)
            self.server.revision += 1  # SL/TP and order changes make no ticket: count them here
            return outcome
        except Refuse as refusal:
            outcome = Outcome(refusal.retcode, comment=refusal.comment)
            if refusal.retcode in (mt5.TRADE_RETCODE_REQUOTE, mt5.TRADE_RETCODE_PRICE_CHANGED):
                tick = self.server.quote(req.symbol)
                if tick is not None:
                    outcome.bid, outcome.ask = tick.bid, tick.ask
            return outcome

    def _normalised(self, account: Account, req: TradeRequest) -> TradeRequest:
        """Prices that are the symbol's digits but for float noise (``price - 100 * point`` gives
        1.0840800000000002) are taken as those digits, as a server stores them; prices really off the
        grid stay as sent, for the checks to refuse."""
        symbol = req.symbol
        if req.action == mt5.TRADE_ACTION_SLTP and req.position in account.positions:
            symbol = account.positions[req.position].symbol
        elif req.action == mt5.TRADE_ACTION_MODIFY and req.order in account.orders:
            symbol = account.orders[req.order].symbol
        spec = self.server.specs.get(symbol)
        if spec is None:
            return req
        return req._replace(
            price=_snap(req.price, spec),
            stoplimit=_snap(req.stoplimit, spec),
            sl=_snap(req.sl, spec),
            tp=_snap(req.tp, spec),
        )

    def _validate(self, account: Account, req: TradeRequest) -> list[Leg]:
        """Every check of ``req`` without executing it; returns the legs it would add (for margin)."""
        action = req.action
        if action == mt5.TRADE_ACTION_DEAL:
            plan = self._plan_deal(account, req)
            self._check_money(account, plan.extra)
            return plan.extra
        if action == mt5.TRADE_ACTION_PENDING:
            self._check_pending(account, req)
        elif action == mt5.TRADE_ACTION_SLTP:
            self._check_sltp(account, req)
        elif action == mt5.TRADE_ACTION_MODIFY:
            self._check_modify(account, req)
        elif action == mt5.TRADE_ACTION_REMOVE:
            self._order_for_change(account, req)
        elif action == mt5.TRADE_ACTION_CLOSE_BY:
            self._check_close_by(account, req)
        else:
            raise Refuse(mt5.TRADE_RETCODE_INVALID)
        return []

    def _execute(self, account: Account, req: TradeRequest) -> Outcome:
        action = req.action
        if action == mt5.TRADE_ACTION_DEAL:
            return self._deal(account, req)
        if action == mt5.TRADE_ACTION_PENDING:
            return self._pending(account, req)
        if action == mt5.TRADE_ACTION_SLTP:
            return self._sltp(account, req)
        if action == mt5.TRADE_ACTION_MODIFY:
            return self._modify(account, req)
        if action == mt5.TRADE_ACTION_REMOVE:
            return self._remove(account, req)
        if action == mt5.TRADE_ACTION_CLOSE_BY:
            return self._close_by(account, req)
        raise Refuse(mt5.TRADE_RETCODE_INVALID)

    # -- DEAL ------------------------------------------------------------------------------------------
    def _plan_deal(self, account: Account, req: TradeRequest) -> DealPlan:
        server = self.server
        position = None
        if req.position:
            position = self._position(account, req.position)
            if req.symbol and req.symbol != position.symbol:
                raise Refuse(mt5.TRADE_RETCODE_INVALID, "Invalid request: symbol does not match position")
        spec = self._spec(position.symbol if position else req.symbol)
        if req.type not in (mt5.ORDER_TYPE_BUY, mt5.ORDER_TYPE_SELL):
            raise Refuse(mt5.TRADE_RETCODE_INVALID_ORDER)
        buy = req.type == mt5.ORDER_TYPE_BUY
        if position is not None and position.is_buy == buy:
            raise Refuse(mt5.TRADE_RETCODE_INVALID, "Invalid request: a close must be opposite the position")
        if position is None and server.netting():
            position = next((p for p in account.positions.values() if p.symbol == spec.name), None)
            if position is not None and position.is_buy == buy:
                position = None  # adding to the netting position: an opening deal
        tick = self._market(spec.name)
        closing = position is not None and req.volume <= position.volume + VOLUME_EPS
        rules.symbol_trade_mode(spec, opening=not closing, buy=buy)
        rules.order_type_allowed(spec, req.type)
        rules.filling_allowed(spec, req.type_filling, pending=False)
        rules.volume_valid(spec, req.volume)
        if req.position and position is not None and req.volume > position.volume + VOLUME_EPS:
            raise Refuse(mt5.TRADE_RETCODE_INVALID_CLOSE_VOLUME)
        if closing and position is not None:
            self._check_close(account, spec, position, tick)
        else:
            close_price = tick.bid if buy else tick.ask
            market_exe = spec.execution in (
                mt5.SYMBOL_TRADE_EXECUTION_MARKET,
                mt5.SYMBOL_TRADE_EXECUTION_EXCHANGE,
            )
            if market_exe and not server.config.sltp_on_market_open and (req.sl or req.tp):
                raise Refuse(
                    mt5.TRADE_RETCODE_INVALID_STOPS, "Invalid stops: set SL/TP after the position opens"
                )
            rules.stops_valid(
                spec, buy=buy, reference=close_price, sl=req.sl, tp=req.tp, strict=server.config.stops_strict
            )
            self._check_opening_limits(account, spec, buy, req.volume)
        instant = spec.execution in (mt5.SYMBOL_TRADE_EXECUTION_INSTANT, mt5.SYMBOL_TRADE_EXECUTION_REQUEST)
        if instant and req.price <= 0:
            raise Refuse(mt5.TRADE_RETCODE_INVALID_PRICE)
        extra = [Leg(spec.name, buy, req.volume, tick.ask if buy else tick.bid)]
        if closing:
            extra = []
        return DealPlan(spec, buy, req.volume, position if closing or server.netting() else None, tick, extra)

    def _check_close(self, account: Account, spec: SymbolSpec, position: Position, tick: Tick) -> None:
        if rules.frozen_position(spec, buy=position.is_buy, sl=position.sl, tp=position.tp, tick=tick):
            raise Refuse(mt5.TRADE_RETCODE_FROZEN)
        if self.server.config.fifo_close and not self.server.netting():
            older = [
                p
                for p in account.positions.values()
                if p.symbol == position.symbol
                and p.is_buy == position.is_buy
                and p.time_ms < position.time_ms
            ]
            if older:
                raise Refuse(mt5.TRADE_RETCODE_FIFO_CLOSE)

    def _deal(self, account: Account, req: TradeRequest) -> Outcome:
        server = self.server
        plan = self._plan_deal(account, req)
        self._check_money(account, plan.extra)
        spec, tick, buy = plan.spec, plan.tick, plan.buy
        market = tick.ask if buy else tick.bid
        price = market
        if spec.execution in (mt5.SYMBOL_TRADE_EXECUTION_INSTANT, mt5.SYMBOL_TRADE_EXECUTION_REQUEST):
            both_ways = server.config.requote_both_ways
            if server.faults.requote_next > 0:
                server.faults.requote_next -= 1
                raise Refuse(mt5.TRADE_RETCODE_REQUOTE)
            if self._beyond_deviation(spec, req, market, buy, both_ways):
                quoted = spec.execution == mt5.SYMBOL_TRADE_EXECUTION_REQUEST  # the dealer's quote moved on
                raise Refuse(mt5.TRADE_RETCODE_PRICE_CHANGED if quoted else mt5.TRADE_RETCODE_REQUOTE)
        else:
            if server.faults.requote_next > 0:
                server.faults.requote_next -= 1
                raise Refuse(mt5.TRADE_RETCODE_REQUOTE)
            slip = (
                server.rng.randint(0, server.config.slippage_points) if server.config.slippage_points else 0
            )
            price = round(market + (slip if buy else -slip) * spec.point, spec.digits)
        fill = min(plan.volume, spec.liquidity_lots)
        fill = vround(int(fill / spec.volume_step + 1e-9) * spec.volume_step)
        if fill <= VOLUME_EPS or (
            fill < plan.volume - VOLUME_EPS and req.type_filling == mt5.ORDER_FILLING_FOK
        ):
            raise Refuse(mt5.TRADE_RETCODE_REJECT, "Request rejected: not enough liquidity")
        order = Order(
            ticket=server.next_order_ticket(),
            symbol=spec.name,
            type=req.type,
            volume_initial=plan.volume,
            volume_current=plan.volume,
            price_open=price,
            time_setup_ms=server.now_ms(),
            magic=req.magic,
            comment=self._comment(req.comment),
            sl=req.sl,
            tp=req.tp,
            type_filling=req.type_filling,
            state=mt5.ORDER_STATE_STARTED,
        )
        deal = server.fill(account, order, fill, price, mt5.DEAL_REASON_EXPERT, plan.position)
        if plan.extra:  # opening or adding: SL/TP sent with the deal apply to the position
            self._apply_stops_on_fill(account, order, req)
        partial = order.volume_current > VOLUME_EPS
        if not partial:
            server.archive(account, order, mt5.ORDER_STATE_FILLED)
        elif req.type_filling == mt5.ORDER_FILLING_RETURN:
            order.state = mt5.ORDER_STATE_PARTIAL
            account.orders[order.ticket] = order
        else:
            server.archive(account, order, mt5.ORDER_STATE_CANCELED)
        retcode = mt5.TRADE_RETCODE_DONE_PARTIAL if partial else mt5.TRADE_RETCODE_DONE
        return Outcome(
            retcode, deal.ticket, order.ticket, fill, price, tick.bid, tick.ask, retcode_comment(retcode)
        )

    @staticmethod
    def _beyond_deviation(
        spec: SymbolSpec, req: TradeRequest, market: float, buy: bool, both_ways: bool
    ) -> bool:
        """Adverse moves beyond ``deviation`` points requote; with ``both_ways`` favourable ones too."""
        adverse = (market - req.price) if buy else (req.price - market)
        moved = abs(adverse) if both_ways else adverse
        return moved > req.deviation * spec.point + spec.point * 1e-3

    def _apply_stops_on_fill(self, account: Account, order: Order, req: TradeRequest) -> None:
        """On netting, SL/TP sent with a deal set the position's levels."""
        if not (req.sl or req.tp) or not order.position_id:
            return
        for position in account.positions.values():
            if position.identifier == order.position_id:
                position.sl, position.tp = req.sl or position.sl, req.tp or position.tp


def _snap(price: float, spec: SymbolSpec) -> float:
    rounded = round(price, spec.digits)
    return rounded if abs(price - rounded) < spec.point * 1e-3 else price
