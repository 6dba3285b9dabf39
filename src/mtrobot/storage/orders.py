"""Orders placed through the platform, their lifecycle and deals as reported by the connector, the activity
log, and each account's balance and equity over time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mtrobot.storage.models import Activity, EquityPoint, Order, OrderFill, utc_now


def add_order(db: Session, account_id: str, order_id: str, **fields: Any) -> Order:
    now = utc_now()
    row = Order(account_id=account_id, order_id=order_id, created_at=now, updated_at=now, **fields)
    db.add(row)
    db.flush()
    return row


def order_of(db: Session, account_id: str, order_id: str) -> Order | None:
    return db.get(Order, (account_id, order_id))


def orders_of(
    db: Session, account_id: str, *, limit: int = 100, before: str | None = None, open_only: bool = False
) -> Sequence[Order]:
    query = select(Order).where(Order.account_id == account_id)
    if open_only:
        query = query.where(Order.state.not_in(("filled", "rejected", "cancelled", "expired", "duplicate")))
    if before is not None:
        anchor = order_of(db, account_id, before)
        if anchor is not None:
            query = query.where(Order.created_at <= anchor.created_at, Order.order_id != before)
    return db.scalars(query.order_by(Order.created_at.desc(), Order.order_id.desc()).limit(limit)).all()


def placed_order_with_ticket(db: Session, account_id: str, ticket: int) -> Order | None:
    """The order placed through the platform that the broker knows as pending order ``ticket``, if any."""
    query = select(Order).where(
        Order.account_id == account_id, Order.ticket == ticket, Order.action == "open"
    )
    return db.scalars(query.limit(1)).first()


def delete_order(db: Session, account_id: str, order_id: str) -> None:
    row = order_of(db, account_id, order_id)
    if row is not None:
        db.delete(row)
        db.flush()


def log_activity(
    db: Session, account_id: str, kind: str, message: str, order_id: str | None = None
) -> Activity:
    row = Activity(account_id=account_id, kind=kind, message=message, order_id=order_id, ts=utc_now())
    db.add(row)
    db.flush()
    return row


def activity_of(
    db: Session, account_id: str, *, limit: int = 100, before: int | None = None
) -> Sequence[Activity]:
    query = select(Activity).where(Activity.account_id == account_id)
    if before is not None:
        query = query.where(Activity.id < before)
    return db.scalars(query.order_by(Activity.id.desc()).limit(limit)).all()


def add_fill(db: Session, order: Order, deal: int, volume: float, price: float) -> bool:
    """Count deal ``deal`` of ``order`` once and refresh its average price; ``False`` if already counted."""
    if db.get(OrderFill, (order.account_id, deal)) is not None:
        return False
    db.add(OrderFill(account_id=order.account_id, deal=deal, order_id=order.order_id, volume=volume,
                     price=price, ts=utc_now()))  # fmt: skip
    db.flush()
    volume_sum, notional = db.execute(
        select(func.sum(OrderFill.volume), func.sum(OrderFill.volume * OrderFill.price)).where(
            OrderFill.account_id == order.account_id, OrderFill.order_id == order.order_id
        )
    ).one()
    if volume_sum:
        order.avg_price = float(notional) / float(volume_sum)
    return True


EQUITY_KEEP = timedelta(days=90)


def add_equity_point(db: Session, account_id: str, ts: datetime, balance: float, equity: float) -> None:
    if db.get(EquityPoint, (account_id, ts)) is None:
        db.add(EquityPoint(account_id=account_id, ts=ts, balance=balance, equity=equity))
    db.execute(delete(EquityPoint).where(EquityPoint.account_id == account_id,
                                         EquityPoint.ts < ts - EQUITY_KEEP))  # fmt: skip
    db.flush()


def equity_of(db: Session, account_id: str, *, since: datetime, limit: int = 2000) -> Sequence[EquityPoint]:
    """The newest ``limit`` points since ``since``, oldest first."""
    query = (
        select(EquityPoint)
        .where(EquityPoint.account_id == account_id, EquityPoint.ts >= since)
        .order_by(EquityPoint.ts.desc())
        .limit(limit)
    )
    return list(reversed(db.scalars(query).all()))
