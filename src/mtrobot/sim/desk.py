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
from mtrobot.sim.money import Leg
from mtrobot.sim.rules import BUY_TYPES, PENDING_TYPES, Refuse
from mtrobot.sim.server import VOLUME_EPS, TradeServer, vround
from mtrobot.sim.state import Account, Order, Position


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


@dataclass
class DealPlan:
    spec: SymbolSpec
    buy: bool
    volume: float
    position: Position | None
    tick: Tick
    extra: list[Leg]


class Desk:
    def __init__(self, server: TradeServer) -> None:
        self.server = server

    # -- entry points ----------------------------------------------------------------------------------
    def check(self, account: Account, req: TradeRequest, can_trade: bool) -> OrderCheckResult:
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
            req,
        )

    def send(self, account: Account, req: TradeRequest, can_trade: bool) -> Outcome:
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

    def _check_money(self, account: Account, extra: list[Leg]) -> None:
        if not extra:
            return
        before = self.server.figures(account)
        after = self.server.figures(account, extra)
        if after.margin > before.margin + 1e-9 and after.margin_free < 0:
            raise Refuse(mt5.TRADE_RETCODE_NO_MONEY)

    def _comment(self, text: str) -> str:
        return text[: self.server.config.comment_length]

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

    def _deal(self, account: Account, req: TradeRequest) -> Outcome:
        server = self.server
        plan = self._plan_deal(account, req)
        self._check_money(account, plan.extra)
        spec, tick, buy = plan.spec, plan.tick, plan.buy
        market = tick.ask if buy else tick.bid
        price = market
        if spec.execution in (mt5.SYMBOL_TRADE_EXECUTION_INSTANT, mt5.SYMBOL_TRADE_EXECUTION_REQUEST):
            both_ways = server.config.requote_both_ways
            if server.faults.requote_next > 0 or self._beyond_deviation(spec, req, market, buy, both_ways):
                server.faults.requote_next = max(0, server.faults.requote_next - 1)
                raise Refuse(mt5.TRADE_RETCODE_REQUOTE)
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

    # -- PENDING ---------------------------------------------------------------------------------------
    def _check_pending(self, account: Account, req: TradeRequest) -> tuple[SymbolSpec, Tick]:
        server = self.server
        if req.type not in PENDING_TYPES:
            raise Refuse(mt5.TRADE_RETCODE_INVALID_ORDER)
        spec = self._spec(req.symbol)
        tick = self._market(spec.name)
        buy = req.type in BUY_TYPES
        rules.symbol_trade_mode(spec, opening=True, buy=buy)
        rules.order_type_allowed(spec, req.type)
        rules.filling_allowed(spec, req.type_filling, pending=True)
        rules.volume_valid(spec, req.volume)
        strict = server.config.stops_strict
        rules.pending_price_valid(spec, req.type, req.price, req.stoplimit, tick, strict)
        entry = req.stoplimit if req.type >= mt5.ORDER_TYPE_BUY_STOP_LIMIT else req.price
        rules.stops_valid(spec, buy=buy, reference=entry, sl=req.sl, tp=req.tp, strict=strict)
        rules.expiration_valid(spec, req.type_time, req.expiration, server.now_ms() // 1000)
        if server.config.limit_orders and len(account.orders) >= server.config.limit_orders:
            raise Refuse(mt5.TRADE_RETCODE_LIMIT_ORDERS)
        self._check_opening_limits(account, spec, buy, req.volume)
        return spec, tick

    def _expiration(self, type_time: int, expiration: int) -> int:
        now = self.server.now_ms()
        if type_time == mt5.ORDER_TIME_DAY:
            return self.server.schedule.trading_day_end(now) // 1000
        if type_time == mt5.ORDER_TIME_SPECIFIED:
            return expiration
        if type_time == mt5.ORDER_TIME_SPECIFIED_DAY:
            return expiration - expiration % 86400 + 86399
        return 0

    def _pending(self, account: Account, req: TradeRequest) -> Outcome:
        server = self.server
        spec, tick = self._check_pending(account, req)
        order = Order(
            ticket=server.next_order_ticket(),
            symbol=spec.name,
            type=req.type,
            volume_initial=req.volume,
            volume_current=req.volume,
            price_open=req.price,
            time_setup_ms=server.now_ms(),
            magic=req.magic,
            comment=self._comment(req.comment),
            sl=req.sl,
            tp=req.tp,
            price_stoplimit=req.stoplimit,
            price_current=tick.ask if req.type in BUY_TYPES else tick.bid,
            type_time=req.type_time,
            type_filling=req.type_filling,
            time_expiration=self._expiration(req.type_time, req.expiration),
        )
        account.orders[order.ticket] = order
        code = mt5.TRADE_RETCODE_DONE
        return Outcome(
            code, 0, order.ticket, req.volume, req.price, tick.bid, tick.ask, retcode_comment(code)
        )

    # -- SLTP ------------------------------------------------------------------------------------------
    def _sltp_position(self, account: Account, req: TradeRequest) -> Position:
        if req.position:
            return self._position(account, req.position)
        if self.server.netting() and req.symbol:
            position = next((p for p in account.positions.values() if p.symbol == req.symbol), None)
            if position is not None:
                return position
        raise Refuse(mt5.TRADE_RETCODE_INVALID, "Invalid request: position required")

    def _check_sltp(self, account: Account, req: TradeRequest) -> Position:
        position = self._sltp_position(account, req)
        spec = self._spec(position.symbol)
        tick = self._market(spec.name)
        rules.symbol_trade_mode(spec, opening=False, buy=position.is_buy)
        if req.sl == position.sl and req.tp == position.tp:
            raise Refuse(mt5.TRADE_RETCODE_NO_CHANGES)
        close_price = tick.bid if position.is_buy else tick.ask
        rules.stops_valid(
            spec,
            buy=position.is_buy,
            reference=close_price,
            sl=req.sl if req.sl != position.sl else 0.0,
            tp=req.tp if req.tp != position.tp else 0.0,
            strict=self.server.config.stops_strict,
        )
        if rules.frozen_position(spec, buy=position.is_buy, sl=position.sl, tp=position.tp, tick=tick):
            raise Refuse(mt5.TRADE_RETCODE_FROZEN)
        return position

    def _sltp(self, account: Account, req: TradeRequest) -> Outcome:
        position = self._check_sltp(account, req)
        position.sl, position.tp = req.sl, req.tp
        position.time_update_ms = self.server.now_ms()
        return Outcome(mt5.TRADE_RETCODE_DONE, comment=retcode_comment(mt5.TRADE_RETCODE_DONE))

    # -- MODIFY / REMOVE -------------------------------------------------------------------------------
    def _order_for_change(self, account: Account, req: TradeRequest) -> tuple[Order, SymbolSpec, Tick]:
        order = account.orders.get(req.order) if req.order else None
        if order is None or order.type not in PENDING_TYPES:
            raise Refuse(mt5.TRADE_RETCODE_INVALID, "Invalid request: no such pending order")
        spec = self._spec(order.symbol)
        tick = self._market(spec.name)
        if rules.frozen_order(spec, order.type, order.price_open, tick):
            raise Refuse(mt5.TRADE_RETCODE_FROZEN)
        return order, spec, tick

    def _check_modify(self, account: Account, req: TradeRequest) -> Order:
        order, spec, tick = self._order_for_change(account, req)
        stoplimit = req.stoplimit if order.type >= mt5.ORDER_TYPE_BUY_STOP_LIMIT else order.price_stoplimit
        expiration = self._expiration(req.type_time, req.expiration)
        same = (req.price, req.sl, req.tp, stoplimit, req.type_time, expiration) == (
            order.price_open,
            order.sl,
            order.tp,
            order.price_stoplimit,
            order.type_time,
            order.time_expiration,
        )
        if same:
            raise Refuse(mt5.TRADE_RETCODE_NO_CHANGES)
        strict = self.server.config.stops_strict
        rules.pending_price_valid(spec, order.type, req.price, stoplimit, tick, strict)
        entry = stoplimit if order.type >= mt5.ORDER_TYPE_BUY_STOP_LIMIT else req.price
        rules.stops_valid(spec, buy=order.is_buy, reference=entry, sl=req.sl, tp=req.tp, strict=strict)
        rules.expiration_valid(spec, req.type_time, req.expiration, self.server.now_ms() // 1000)
        return order

    def _modify(self, account: Account, req: TradeRequest) -> Outcome:
        order = self._check_modify(account, req)
        order.price_open, order.sl, order.tp = req.price, req.sl, req.tp
        if order.type >= mt5.ORDER_TYPE_BUY_STOP_LIMIT:
            order.price_stoplimit = req.stoplimit
        order.type_time = req.type_time
        order.time_expiration = self._expiration(req.type_time, req.expiration)
        return Outcome(mt5.TRADE_RETCODE_DONE, comment=retcode_comment(mt5.TRADE_RETCODE_DONE))

    def _remove(self, account: Account, req: TradeRequest) -> Outcome:
        order, _, _ = self._order_for_change(account, req)
        self.server.archive(account, order, mt5.ORDER_STATE_CANCELED)
        return Outcome(mt5.TRADE_RETCODE_DONE, comment=retcode_comment(mt5.TRADE_RETCODE_DONE))

    # -- CLOSE_BY --------------------------------------------------------------------------------------
    def _check_close_by(self, account: Account, req: TradeRequest) -> tuple[Position, Position, Tick]:
        if self.server.netting():
            raise Refuse(mt5.TRADE_RETCODE_INVALID_ORDER)
        position = self._position(account, req.position) if req.position else None
        by = self._position(account, req.position_by) if req.position_by else None
        if position is None or by is None or position is by:
            raise Refuse(mt5.TRADE_RETCODE_INVALID, "Invalid request: position and position_by required")
        if position.symbol != by.symbol or position.is_buy == by.is_buy:
            raise Refuse(
                mt5.TRADE_RETCODE_INVALID, "Invalid request: positions must be opposite, same symbol"
            )
        spec = self._spec(position.symbol)
        rules.order_type_allowed(spec, mt5.ORDER_TYPE_CLOSE_BY)
        tick = self._market(spec.name)
        rules.symbol_trade_mode(spec, opening=False, buy=position.is_buy)
        for p in (position, by):
            if rules.frozen_position(spec, buy=p.is_buy, sl=p.sl, tp=p.tp, tick=tick):
                raise Refuse(mt5.TRADE_RETCODE_FROZEN)
        return position, by, tick

    def _close_by(self, account: Account, req: TradeRequest) -> Outcome:
        server = self.server
        position, by, tick = self._check_close_by(account, req)
        volume = min(position.volume, by.volume)
        now = server.now_ms()
        order = Order(
            ticket=server.next_order_ticket(),
            symbol=position.symbol,
            type=mt5.ORDER_TYPE_CLOSE_BY,
            volume_initial=volume,
            volume_current=volume,
            price_open=by.price_open,
            time_setup_ms=now,
            magic=req.magic,
            comment=self._comment(req.comment or f"#{position.ticket} by #{by.ticket}"),
            type_filling=mt5.ORDER_FILLING_FOK,
            state=mt5.ORDER_STATE_STARTED,
            position_id=position.identifier,
            position_by_id=by.identifier,
        )
        first = None
        for target in (position, by):
            order.volume_current = volume
            deal = server.fill_close_by(account, order, target, volume, by.price_open)
            first = first or deal
        order.position_id, order.volume_current = position.identifier, 0.0
        server.archive(account, order, mt5.ORDER_STATE_FILLED)
        assert first is not None
        code = mt5.TRADE_RETCODE_DONE
        return Outcome(
            code, first.ticket, order.ticket, volume, by.price_open, tick.bid, tick.ask, retcode_comment(code)
        )
