"""Order actions of the dealing desk: pending orders, SL/TP, modify, remove, close-by."""

from __future__ import annotations

from mtrobot.broker import constants as mt5
from mtrobot.broker.retcodes import retcode_comment
from mtrobot.broker.structures import Tick, TradeRequest
from mtrobot.sim import rules
from mtrobot.sim.config import SymbolSpec
from mtrobot.sim.desk_base import DeskBase, Outcome
from mtrobot.sim.rules import BUY_TYPES, PENDING_TYPES, Refuse
from mtrobot.sim.state import Account, Order, Position


class OrderActions(DeskBase):
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
            time_expiration=self._expiration(req.type_time, req.expiration, spec),
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
        expiration = self._expiration(req.type_time, req.expiration, spec)
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
        order.time_expiration = self._expiration(req.type_time, req.expiration, self._spec(order.symbol))
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
