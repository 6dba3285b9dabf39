"""Reconciliation: make the platform's view of positions and orders match the broker's, and say what differed.

Two loops share one lock with the order path (so they never race an order being sent):

- a short *watch* (every ``pending_poll_s``) follows placed pending orders to their end (filled, cancelled,
  expired) and settles orders left ``unknown`` by a lost answer;
- a full *reconciliation* (every ``sync_interval_minutes``, after every reconnect and at start) compares
  positions and pending orders, corrects the journal's view, and publishes a report of every difference on
  ``reconcile.report.{account}``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mtrobot.broker import constants as mt5
from mtrobot.bus import subjects
from mtrobot.core.events import utc_now
from mtrobot.core.ids import magic_number
from mtrobot.core.lifecycle import OrderState
from mtrobot.core.orders import VOLUME_TOLERANCE
from mtrobot.logging import get_logger

from .executor import OrderExecutor
from .journal import Journal, JournalEntry, PositionView
from .outcomes import fills_from_deals, final_state

log = get_logger(__name__)
S = OrderState

DifferenceKind = Literal[
    "missing", "extra", "volume_mismatch", "outside_platform", "order_missing", "order_resolved"
]


class Difference(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: DifferenceKind
    symbol: str
    position: int | None = None
    ticket: int | None = None
    order_id: str | None = None
    platform_volume: float | None = None
    broker_volume: float | None = None
    magic: int | None = None
    detail: str = ""


class ReconciliationReport(BaseModel):
    """Published on ``reconcile.report.{account}`` after every reconciliation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account: str
    ts: datetime = Field(default_factory=utc_now)
    trigger: str
    positions_checked: int
    orders_checked: int
    differences: list[Difference]


class Reconciler:
    def __init__(self, account: str, journal: Journal, executor: OrderExecutor, lock: asyncio.Lock) -> None:
        self.account = account
        self.journal = journal
        self.executor = executor
        self.lock = lock
        self.reports = 0
        self.last_report: ReconciliationReport | None = None

    @property
    def link(self) -> Any:
        return self.executor.link

    # -- the short watch ---------------------------------------------------------------------------

    async def watch_open_orders(self) -> None:
        """Follow accepted/partially filled pending orders and settle unknown ones (under the lock)."""
        entries = await asyncio.to_thread(self.journal.open_entries)
        for entry in entries:
            async with self.lock:
                current = await asyncio.to_thread(self.journal.get, entry.order_id)
                if current is None or current.state.is_terminal:
                    continue
                if current.state is S.UNKNOWN:
                    await self.executor.settle_unknown(current)
                elif current.state in (S.ACCEPTED, S.PARTIALLY_FILLED) and current.ticket:
                    await self._follow_pending(current)

    async def _follow_pending(self, entry: JournalEntry) -> None:
        oid, ticket = entry.order_id, entry.ticket
        active = await self.link.call("orders_get", ticket=ticket, order_id=oid)
        if active.value is None:
            return
        deals = await self.link.call("history_deals_get", ticket=ticket, order_id=oid)
        if deals.value is None:
            return
        requested = float(entry.request.get("volume") or 0.0)
        fills = fills_from_deals(
            [d for d in deals.value if d.order == ticket],
            order_id=oid,
            account=self.account,
            requested=requested,
            retcode=mt5.TRADE_RETCODE_DONE,
            latency_ms=0.0,
        )
        if active.value:  # still working: record any new partial fills
            if fills and sum(f.volume for f in fills) > entry.filled_volume + VOLUME_TOLERANCE:
                await asyncio.to_thread(self.journal.transition, oid, S.PARTIALLY_FILLED, fills=fills)
            return
        hist = await self.link.call("history_orders_get", ticket=ticket, order_id=oid)
        if hist.value is None:
            return
        state = hist.value[0].state if hist.value else None
        target = final_state(state)
        if target is None:
            return  # history not synchronised yet: look again next round
        if target is S.FILLED and entry.state is S.ACCEPTED and fills:
            filled = sum(f.volume for f in fills)
            if filled < requested - VOLUME_TOLERANCE:
                await asyncio.to_thread(self.journal.transition, oid, S.PARTIALLY_FILLED, fills=fills)
        await asyncio.to_thread(self.journal.transition, oid, target, fills=fills)

    # -- the full reconciliation -------------------------------------------------------------------

    async def reconcile(self, trigger: str) -> ReconciliationReport | None:
        async with self.lock:
            positions = await self.link.call("positions_get")
            orders = await self.link.call("orders_get")
            if positions.value is None or orders.value is None:
                log.warning("reconciliation skipped: broker unavailable", account=self.account)
                return None
            view = {p.position: p for p in await asyncio.to_thread(self.journal.positions)}
            ours = await self._platform_magics()
            differences: list[Difference] = []
            corrected: list[PositionView] = []
            for pos in positions.value:
                side = "buy" if pos.type == mt5.POSITION_TYPE_BUY else "sell"
                mine = view.pop(pos.ticket, None) or view.pop(pos.identifier, None)
                if pos.magic not in ours:
                    differences.append(
                        Difference(
                            kind="outside_platform",
                            symbol=pos.symbol,
                            position=pos.ticket,
                            broker_volume=pos.volume,
                            magic=pos.magic,
                            detail="opened outside the platform",
                        )
                    )
                elif mine is None:
                    differences.append(
                        Difference(
                            kind="extra",
                            symbol=pos.symbol,
                            position=pos.ticket,
                            broker_volume=pos.volume,
                            magic=pos.magic,
                            detail="open at the broker, unknown to the platform",
                        )
                    )
                elif abs(mine.volume - pos.volume) > VOLUME_TOLERANCE:
                    differences.append(
                        Difference(
                            kind="volume_mismatch",
                            symbol=pos.symbol,
                            position=pos.ticket,
                            platform_volume=mine.volume,
                            broker_volume=pos.volume,
                            magic=pos.magic,
                        )
                    )
                corrected.append(
                    PositionView(
                        pos.ticket, pos.symbol, side, pos.volume, pos.magic, mine.order_id if mine else None
                    )
                )
            for gone in view.values():
                differences.append(
                    Difference(
                        kind="missing",
                        symbol=gone.symbol,
                        position=gone.position,
                        platform_volume=gone.volume,
                        order_id=gone.order_id,
                        detail="closed at the broker (stop loss, take profit, stop-out or by hand)",
                    )
                )
            differences += await self._order_differences(orders.value)
            await asyncio.to_thread(self.journal.replace_positions, corrected)
            report = ReconciliationReport(
                account=self.account,
                trigger=trigger,
                positions_checked=len(positions.value),
                orders_checked=len(orders.value),
                differences=differences,
            )
            await asyncio.to_thread(
                self.journal.add_event, "report", subjects.reconciliation_report(self.account), report
            )
        self.reports += 1
        self.last_report = report
        if differences:
            log.info("reconciliation found differences", account=self.account, count=len(differences))
        return report

    async def _order_differences(self, active: Any) -> list[Difference]:
        """Accepted pending orders the broker no longer has are followed to their end."""
        tickets = {o.ticket for o in active}
        out: list[Difference] = []
        for entry in await asyncio.to_thread(self.journal.open_entries):
            if entry.state is S.ACCEPTED and entry.ticket and entry.ticket not in tickets:
                await self._follow_pending(entry)
                after = await asyncio.to_thread(self.journal.get, entry.order_id)
                out.append(
                    Difference(
                        kind="order_resolved" if after and after.state.is_terminal else "order_missing",
                        symbol=entry.symbol,
                        ticket=entry.ticket,
                        order_id=entry.order_id,
                        detail=f"now {after.state.value if after else 'unknown'}",
                    )
                )
        return out

    async def _platform_magics(self) -> set[int]:
        return await asyncio.to_thread(self.journal.magics) | {magic_number(self.account, None)}
