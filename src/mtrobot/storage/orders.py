"""Orders placed through the platform, their lifecycle as reported by the connector, and the activity log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mtrobot.storage.models import Activity, Order, utc_now


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
