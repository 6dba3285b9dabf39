"""The order path: admit → validate → (record intent → send)* → record outcome, resumable at every step.

Each step reads the journal's state and moves it on through the lifecycle table, so the same code serves a
fresh order, a redelivered message and recovery after a SIGKILL. The one rule that keeps orders from being
duplicated: an order whose journal shows a send attempt without a recorded answer is never sent again until
the broker has been searched for it (:mod:`mtrobot.connector.lookup`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

from mtrobot.broker import constants as mt5
from mtrobot.broker.retcodes import Reaction, is_link_failure, trade_retcode
from mtrobot.broker.trade_request import Market, build
from mtrobot.core.events import BrokerError, ErrorCategory, Fill
from mtrobot.core.ids import comment_tag, magic_number
from mtrobot.core.lifecycle import OrderState
from mtrobot.core.orders import VOLUME_TOLERANCE, OrderAction, OrderRequest
from mtrobot.logging import get_logger

from .failpoints import Failpoints
from .intake import Parsed, Refusal, read_order
from .intake_limit import IntakeLimit
from .journal import Journal, JournalEntry
from .link import BrokerLink, CallResult
from .lookup import Found, LookupUnavailable, find_by_tag
from .options import OptionsHolder
from .outcomes import Verdict, fill_from_result, fills_from_deals, final_state, judge
from .specs import SPEC_RETCODES, SymbolMemory
from .validation import check_request

log = get_logger(__name__)
S = OrderState


class SessionPort(Protocol):
    link: BrokerLink

    async def wait_ready(self, timeout: float) -> bool: ...

    def notice_failure(self, error: tuple[int, str]) -> None: ...


class BrokerUnavailable(Exception):
    """The broker could not be reached for a step that must not be skipped; try the step again later."""


class OrderExecutor:
    """Runs orders for one account against its journal and broker session."""

    def __init__(
        self,
        account: str,
        journal: Journal,
        session: SessionPort,
        options: OptionsHolder,
        *,
        failpoints: Failpoints | None = None,
        rng: random.Random | None = None,
        on_outcome: Callable[[JournalEntry], None] | None = None,
        gate: Callable[[], str | None] | None = None,
    ) -> None:
        self.account = account
        self._gate = gate
        self.journal = journal
        self.session = session
        self.options = options
        self.failpoints = failpoints or Failpoints("")
        self.rng = rng or random.Random()
        self._on_outcome = on_outcome
        self.symbols = SymbolMemory()
        """Per session: symbols selected (symbol_select once each) and their specifications."""
        self.intake_limit = IntakeLimit()

    @property
    def link(self) -> BrokerLink:
        return self.session.link

    # -- intake ------------------------------------------------------------------------------------

    async def handle_message(
        self, data: bytes, subject_symbol: str, stream_seq: int | None, published_at: float | None = None
    ) -> JournalEntry | None:
        """Process one message from ``orders.submitted.{account}.>`` until its outcome is recorded."""
        return await self.handle_parsed(
            read_order(data, self.account, subject_symbol), stream_seq, published_at
        )

    async def handle_parsed(
        self, parsed: Parsed, stream_seq: int | None, published_at: float | None = None
    ) -> JournalEntry | None:
        """Process one message read by :func:`mtrobot.connector.intake.read_order`."""
        if parsed.order_id is None:
            # Without a usable order_id nothing can be journaled: tell the sender (with the order id read
            # from the bytes, if any); the connector keeps the message in the dead letter.
            assert parsed.refusal is not None
            refusal = parsed.refusal
            error = self._error(
                parsed.reply_order_id,
                parsed.symbol,
                refusal.retcode,
                refusal.message,
                ErrorCategory.VALIDATION,
                0,
            )
            self.journal.add_event("error", _error_subject(self.account, parsed.symbol), error)
            return None
        request = parsed.request
        robot = request.robot if request else None
        magic = (request.magic if request and request.magic else None) or magic_number(self.account, robot)
        admission = self.journal.admit(
            parsed.order_id,
            parsed.symbol,
            request.model_dump(mode="json") if request else parsed.raw,
            stream_seq,
            comment_tag(self.account, parsed.order_id),
            magic,
            published_at,
        )
        entry = admission.entry
        if not admission.new and entry.stream_seq != stream_seq:
            self.journal.record_duplicate(entry.order_id, entry.symbol)
            return entry
        self.failpoints.hit("after_admit")
        refused = parsed.refusal
        if refused is None and request is not None and admission.new:  # the order-rate limit, before any
            limit = self.options.current.order_limit  # broker call, at the pace the orders were sent
            refused = self.intake_limit.refuse(request, limit, published_at)
        if refused is not None:
            if entry.state is S.RECEIVED:
                entry = await self._reject(entry, refused, ErrorCategory.VALIDATION)
            return entry
        # A new order's request was validated by the intake a moment ago: not validated again from the row.
        return await self.execute(entry, request if admission.new else None)

    async def execute(self, entry: JournalEntry, request: OrderRequest | None = None) -> JournalEntry:
        """Drive ``entry`` as far as it can go now; safe to call again with whatever the journal holds.
        ``request``: the entry's request already validated (else it is read from ``entry.request``)."""
        if entry.state.is_terminal or entry.state in (S.ACCEPTED, S.PARTIALLY_FILLED):
            return entry
        if entry.state in (S.SENT, S.UNKNOWN):
            return await self.resolve(entry)
        if request is None:
            request = OrderRequest.model_validate(entry.request)
        market = None
        if entry.state is S.RECEIVED:
            closed = self._gate() if self._gate is not None and request.action is OrderAction.OPEN else None
            if closed is not None:
                return await self._reject(entry, _gated(closed), ErrorCategory.VALIDATION)
            market = await self._market_or_expire(entry, request)
            if market is None:
                return await self._expire(entry)
            refusal = await self._validate(entry, request, market)
            if refusal is not None and self.symbols.forget(request.symbol):
                # Never refused on a remembered specification (its rules may have changed since): read
                # it again and check again.
                market = await self._market_or_expire(entry, request)
                if market is None:
                    return await self._expire(entry)
                refusal = await self._validate(entry, request, market)
            if refusal is not None:
                return await self._reject(entry, refusal, ErrorCategory.VALIDATION)
            # Validated: recorded with the intent to send, in the same transaction (one commit fewer).
            return await self._send_loop(entry, request, market, via=S.VALIDATED)
        return await self._send_loop(entry, request, market)

    async def _validate(self, entry: JournalEntry, request: OrderRequest, market: Market) -> Refusal | None:
        opts = self.options.current
        refusal = check_request(
            request,
            market,
            sessions=opts.market_sessions.get(request.symbol, ()),
            strict_stops=opts.strict_stops,
        )
        if refusal is None and opts.validate_before_send:
            refusal = await self._order_check(entry, request, market)
        return refusal

    # -- sending -----------------------------------------------------------------------------------

    async def _send_loop(
        self,
        entry: JournalEntry,
        request: OrderRequest,
        market: Market | None = None,
        via: OrderState | None = None,
    ) -> JournalEntry:
        """Send until an answer settles the order. ``market``: just read by validation, so the first attempt
        need not read it again; every retry reads a fresh price. ``via``: the state (``validated``) the order
        is recorded in together with its first intent."""
        while True:
            opts = self.options.current
            if market is None:
                market = await self._market_or_expire(entry, request)
                if market is None:
                    return await self._expire(entry)
            if self._target_gone(request, market):
                if via is not None:  # it passed validation: say so before the refusal, as without ``via``
                    entry = self.journal.transition(entry.order_id, via, durable=False)
                return await self._reject(entry, _gone(request), ErrorCategory.FATAL)
            trade = build(
                request, market, tag=entry.tag, magic=entry.magic, default_deviation=opts.default_deviation
            )
            entry = self.journal.begin_attempt(entry.order_id, via=via)
            via = None
            self.failpoints.hit("after_intent")
            result = await self.link.call(
                "order_send", trade, order_id=entry.order_id, call_timeout=opts.send_timeout_s
            )
            self.failpoints.hit("after_send")
            verdict = judge(result)
            if result.error is not None:
                self.session.notice_failure(result.error)
            if verdict.retcode in SPEC_RETCODES:
                self.symbols.forget(request.symbol)  # the next order reads the symbol's rules again
            if verdict.reaction in (Reaction.OK, Reaction.OK_IDEMPOTENT):
                return await self._record_success(entry, request, trade, result, verdict)
            if verdict.reaction is Reaction.AMBIGUOUS:
                return await self.resolve(entry, verdict)
            if verdict.reaction is Reaction.RETRY and entry.attempts <= opts.max_retries:
                delay = opts.retry_backoff.delay(entry.attempts, self.rng)
                log.info(
                    "retriable answer, retrying",
                    order_id=entry.order_id,
                    retcode=verdict.retcode,
                    attempt=entry.attempts,
                    delay_s=round(delay, 3),
                )
                await asyncio.sleep(delay)
                market = None
                continue
            category = ErrorCategory.FATAL if verdict.reaction is Reaction.FATAL else ErrorCategory.RETRIABLE
            message = verdict.message
            if verdict.reaction is Reaction.RETRY:
                message += f" Gave up after {entry.attempts} attempts; the order was not executed."
            return await self._reject(entry, Refusal(verdict.retcode, message), category, verdict.name)

    async def _record_success(
        self,
        entry: JournalEntry,
        request: OrderRequest,
        trade: dict[str, Any],
        result: CallResult,
        verdict: Verdict,
    ) -> JournalEntry:
        res = result.value
        action = trade["action"]
        oid = entry.order_id
        if action == mt5.TRADE_ACTION_PENDING:
            entry = self.journal.transition(oid, S.ACCEPTED, ticket=res.order)
        elif action in (mt5.TRADE_ACTION_SLTP, mt5.TRADE_ACTION_MODIFY):
            entry = self.journal.transition(oid, S.FILLED, ticket=request.position or request.ticket)
        elif action == mt5.TRADE_ACTION_REMOVE:
            entry = self.journal.transition(oid, S.CANCELLED, ticket=request.ticket)
        elif verdict.reaction is Reaction.OK_IDEMPOTENT:  # closing a position that is already closed
            return await self._reject(
                entry, Refusal(verdict.retcode, verdict.message), ErrorCategory.FATAL, verdict.name
            )
        else:
            fills = await self._deal_fills(entry, trade, res, result.latency_ms)
            entry = await self._record_fills(entry, fills, float(trade["volume"]), trade, res.order)
        self.failpoints.hit("after_record")
        self._outcome(entry)
        return entry

    async def _deal_fills(
        self, entry: JournalEntry, trade: dict[str, Any], res: Any, latency: float
    ) -> list[Fill]:
        deals = await self.link.call("history_deals_get", ticket=res.order, order_id=entry.order_id)
        found = [d for d in deals.value or () if d.order == res.order]
        if found:
            return fills_from_deals(
                found,
                order_id=entry.order_id,
                account=self.account,
                requested=float(trade["volume"]),
                retcode=res.retcode,
                latency_ms=latency,
            )
        side = "buy" if trade["type"] == mt5.ORDER_TYPE_BUY else "sell"
        return [
            fill_from_result(
                res,
                order_id=entry.order_id,
                account=self.account,
                symbol=trade["symbol"],
                side=side,
                requested=float(trade["volume"]),
                position=int(trade.get("position") or 0),
                latency_ms=latency,
            )
        ]

    async def _record_fills(
        self, entry: JournalEntry, fills: list[Fill], requested: float, trade: dict[str, Any], ticket: int
    ) -> JournalEntry:
        filled = sum(f.volume for f in fills) + entry.filled_volume
        oid = entry.order_id
        if filled >= requested - VOLUME_TOLERANCE:
            return self.journal.transition(oid, S.FILLED, ticket=ticket, fills=fills)
        entry = self.journal.transition(oid, S.PARTIALLY_FILLED, ticket=ticket, fills=fills)
        if trade.get("type_filling") != mt5.ORDER_FILLING_RETURN:
            # FOK/IOC: whatever was not filled at once is cancelled by the server.
            entry = self.journal.transition(oid, S.CANCELLED, ticket=ticket)
        return entry

    # -- after an ambiguous answer -----------------------------------------------------------------

    async def resolve(self, entry: JournalEntry, verdict: Verdict | None = None) -> JournalEntry:
        """Find out at the broker what became of a send whose answer was lost; never resend blindly."""
        request = OrderRequest.model_validate(entry.request)
        if request.action in (OrderAction.MODIFY, OrderAction.CANCEL):
            return await self._resolve_idempotent(entry, request)
        if not await self.session.wait_ready(min(5.0, self.options.current.call_timeout_s)):
            return await self._mark_unknown(entry)
        try:
            found = await find_by_tag(self.link, entry)
        except LookupUnavailable:
            return await self._mark_unknown(entry)
        return await self._apply_found(entry, request, found)

    async def _apply_found(self, entry: JournalEntry, request: OrderRequest, found: Found) -> JournalEntry:
        oid = entry.order_id
        if found.deals:
            requested = float(request.volume or (found.deals[0].volume if found.deals else 0.0))
            if request.action is OrderAction.CLOSE and request.volume is None:
                requested = sum(d.volume for d in found.deals)
            fills = fills_from_deals(
                list(found.deals),
                order_id=oid,
                account=self.account,
                requested=requested,
                retcode=mt5.TRADE_RETCODE_DONE,
                latency_ms=0.0,
            )
            ticket = found.deals[0].order
            states = {o.state for o in found.history_orders}
            filled = sum(f.volume for f in fills)
            if filled >= requested - VOLUME_TOLERANCE or mt5.ORDER_STATE_FILLED in states:
                entry = self.journal.transition(oid, S.FILLED, ticket=ticket, fills=fills)
            else:
                entry = self.journal.transition(oid, S.PARTIALLY_FILLED, ticket=ticket, fills=fills)
                if found.history_orders and not found.active_orders:
                    entry = self.journal.transition(oid, S.CANCELLED, ticket=ticket)
        elif found.active_orders:
            entry = self.journal.transition(oid, S.ACCEPTED, ticket=found.active_orders[0].ticket)
        elif found.history_orders:
            order = found.history_orders[0]
            target = final_state(order.state)
            if target is None or target is S.FILLED:  # filled without a deal of ours, or not ended: refused
                target = S.REJECTED
            entry = self.journal.transition(oid, target, ticket=order.ticket)
        else:
            return await self._mark_unknown(entry)
        self._outcome(entry)
        return entry

    async def _resolve_idempotent(self, entry: JournalEntry, request: OrderRequest) -> JournalEntry:
        """Modify and cancel set absolute values: read the target back; if not done yet, sending again is
        harmless (a second identical modify is "no changes", a second cancel finds nothing to cancel)."""
        if not await self.session.wait_ready(min(5.0, self.options.current.call_timeout_s)):
            return await self._mark_unknown(entry)
        market = await self._read_targets(request)
        if market is None:
            return await self._mark_unknown(entry)
        oid = entry.order_id
        if request.action is OrderAction.CANCEL and market.order is None:
            res = await self.link.call("history_orders_get", ticket=request.ticket, order_id=oid)
            if res.value is None:
                return await self._mark_unknown(entry)
            states = {o.state for o in res.value}
            if mt5.ORDER_STATE_CANCELED in states:
                entry = self.journal.transition(oid, S.CANCELLED, ticket=request.ticket)
                self._outcome(entry)
                return entry
            return await self._reject(entry, _gone(request), ErrorCategory.FATAL)
        if request.action is OrderAction.MODIFY and self._already_applied(request, market):
            entry = self.journal.transition(oid, S.FILLED, ticket=request.ticket or request.position)
            self._outcome(entry)
            return entry
        if self._target_gone(request, market):
            return await self._reject(entry, _gone(request), ErrorCategory.FATAL)
        if entry.attempts > self.options.current.max_retries:
            return await self._mark_unknown(entry)
        return await self._send_loop(entry, request)

    @staticmethod
    def _already_applied(request: OrderRequest, market: Market) -> bool:
        digits = market.info.digits if market.info else 8

        def same(actual: float, wanted: float | None) -> bool:
            return wanted is None or round(actual, digits) == round(wanted, digits)

        if request.position and market.position is not None:
            return same(market.position.sl, request.sl) and same(market.position.tp, request.tp)
        if request.ticket and market.order is not None:
            o = market.order
            return same(o.price_open, request.price) and same(o.sl, request.sl) and same(o.tp, request.tp)
        return False

    async def _mark_unknown(self, entry: JournalEntry) -> JournalEntry:
        if entry.state is not S.UNKNOWN:
            entry = self.journal.transition(entry.order_id, S.UNKNOWN)
        return entry

    async def settle_unknown(self, entry: JournalEntry) -> JournalEntry:
        """Reconciliation's word on an order left ``unknown``: look again; if a lookup that *succeeded* still
        finds no trace after the settle time, the order was not executed: say so and close it."""
        if not await self.session.wait_ready(1.0):
            return entry
        request = OrderRequest.model_validate(entry.request)
        if request.action in (OrderAction.MODIFY, OrderAction.CANCEL):
            entry = await self._resolve_idempotent(entry, request)
            looked = entry.state is S.UNKNOWN and self.session.link.terminal is not None
        else:
            try:
                found = await find_by_tag(self.link, entry)
            except LookupUnavailable:
                return entry
            if not found.empty:
                return await self._apply_found(entry, request, found)
            looked = True
        if not looked or entry.state is not S.UNKNOWN or entry.unknown_since is None:
            return entry
        if time.time() - entry.unknown_since < self.options.current.unknown_settle_s:
            return entry
        message = (
            "The broker's answer to this order was lost, and the broker has no trace of it: it was "
            "not executed. Submit it again with a new order id if you still want it."
        )
        return await self._reject(entry, Refusal(mt5.TRADE_RETCODE_TIMEOUT, message), ErrorCategory.RETRIABLE)

    # -- helpers -----------------------------------------------------------------------------------

    async def _market_or_expire(self, entry: JournalEntry, request: OrderRequest) -> Market | None:
        """Read the symbol, tick and targets; wait for the session while the order is young enough."""
        max_age = self.options.current.max_order_age_s
        while True:
            age = time.time() - entry.created_at
            if age > max_age:
                return None
            if await self.session.wait_ready(min(5.0, max(0.1, max_age - age))):
                market = await self._read_targets(request)
                if market is not None:
                    return market
                await asyncio.sleep(0.2)

    async def _read_targets(self, request: OrderRequest) -> Market | None:
        oid, symbol = request.order_id, request.symbol
        terminal = self.link.terminal
        if not self.symbols.selected(terminal, symbol):
            selected = await self.link.call("symbol_select", symbol, True, order_id=oid)
            if selected.ok:
                self.symbols.mark_selected(terminal, symbol)
        spec = self.symbols.spec(terminal, symbol)
        if spec is None:
            info = await self.link.call("symbol_info", symbol, order_id=oid)
            if info.value is not None:
                self.symbols.remember(terminal, symbol, info.value)
        else:
            info = CallResult(spec)
        tick = await self.link.call("symbol_info_tick", symbol, order_id=oid)
        position = order = None
        if request.position:
            res = await self.link.call("positions_get", ticket=request.position, order_id=oid)
            if res.value is None:
                return None
            position = res.value[0] if res.value else None
        if request.ticket:
            res = await self.link.call("orders_get", ticket=request.ticket, order_id=oid)
            if res.value is None:
                return None
            order = res.value[0] if res.value else None
        link_failed = [r.error for r in (info, tick) if r.error and is_link_failure(r.error[0])]
        if link_failed:
            self.session.notice_failure(link_failed[0])
            return None
        return Market(info.value, tick.value, position, order)

    async def _order_check(
        self, entry: JournalEntry, request: OrderRequest, market: Market
    ) -> Refusal | None:
        if request.action is OrderAction.CANCEL:
            return None
        trade = build(
            request,
            market,
            tag=entry.tag,
            magic=entry.magic,
            default_deviation=self.options.current.default_deviation,
        )
        result = await self.link.call("order_check", trade, order_id=entry.order_id)
        if result.error is not None:
            failed = result.error
            return None if is_link_failure(failed[0]) else Refusal(failed[0], failed[1])
        info = trade_retcode(int(result.value.retcode))
        return None if info.reaction is Reaction.OK else Refusal(info.code, info.message)

    def _target_gone(self, request: OrderRequest, market: Market) -> bool:
        if request.action is OrderAction.CLOSE or (request.action is OrderAction.MODIFY and request.position):
            return market.position is None
        if request.action in (OrderAction.CANCEL, OrderAction.MODIFY) and request.ticket:
            return market.order is None
        return False

    async def _expire(self, entry: JournalEntry) -> JournalEntry:
        message = (
            "The broker could not be reached in time, so the order was not sent (it is too old to "
            "send safely now)."
        )
        return await self._reject(
            entry, Refusal(mt5.TRADE_RETCODE_CONNECTION, message), ErrorCategory.RETRIABLE
        )

    async def _reject(
        self, entry: JournalEntry, refusal: Refusal, category: ErrorCategory, name: str | None = None
    ) -> JournalEntry:
        error = self._error(
            entry.order_id, entry.symbol, refusal.retcode, refusal.message, category, entry.attempts, name
        )
        entry = self.journal.transition(
            entry.order_id,
            S.REJECTED,
            error=error,
            outcome={"retcode": refusal.retcode, "message": refusal.message},
        )
        self.failpoints.hit("after_record")
        self._outcome(entry)
        return entry

    def _error(
        self,
        order_id: str,
        symbol: str,
        retcode: int,
        message: str,
        category: ErrorCategory,
        attempts: int,
        name: str | None = None,
    ) -> BrokerError:
        return BrokerError(
            order_id=order_id,
            account=self.account,
            symbol=symbol or "_",
            retcode=retcode,
            retcode_name=name or _name(retcode),
            category=category,
            message=message,
            attempts=attempts,
        )

    def _outcome(self, entry: JournalEntry) -> None:
        if self._on_outcome is not None:
            self._on_outcome(entry)


def _name(code: int) -> str:
    from mtrobot.broker.retcodes import LAST_ERRORS

    return LAST_ERRORS[code].name if code in LAST_ERRORS else trade_retcode(code).name


def _gated(reason: str) -> Refusal:
    # The agent's trading gate (paused or quarantined): only new opens are refused, closes still go.
    message = f"Not sent: trading is {reason}. No new position opens until trading is resumed; closing works."
    return Refusal(10027, message)


def _gone(request: OrderRequest) -> Refusal:
    if request.position:
        return Refusal(mt5.TRADE_RETCODE_POSITION_CLOSED, f"Position {request.position} is no longer open.")
    return Refusal(mt5.TRADE_RETCODE_INVALID, f"Pending order {request.ticket} is no longer active.")


def _error_subject(account: str, symbol: str) -> str:
    from mtrobot.bus import subjects

    return subjects.broker_error(account, symbol or "_")
