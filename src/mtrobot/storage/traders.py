"""Traders, browser sessions, API tokens and the login throttle."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from mtrobot.storage.models import ApiToken, LoginThrottle, Trader, WebSession, utc_now


def trader_by_email(db: Session, email: str) -> Trader | None:
    return db.scalar(select(Trader).where(Trader.email == email.lower()))


def trader_by_id(db: Session, trader_id: str) -> Trader | None:
    return db.get(Trader, trader_id)


def add_trader(db: Session, trader_id: str, email: str, name: str, password_hash: str) -> Trader:
    trader = Trader(id=trader_id, email=email.lower(), name=name, password_hash=password_hash)
    db.add(trader)
    db.flush()
    return trader


TOUCH_INTERVAL = timedelta(seconds=60)
"""How stale a session's or token's last-use time may get before a request updates it."""

# --- sessions -------------------------------------------------------------------------------------------


def add_session(db: Session, id_hash: str, trader_id: str, csrf_token: str, ttl: timedelta) -> WebSession:
    now = utc_now()
    row = WebSession(
        id_hash=id_hash, trader_id=trader_id, csrf_token=csrf_token, created_at=now, expires_at=now + ttl
    )
    db.add(row)
    db.flush()
    return row


def live_session(db: Session, id_hash: str, idle: timedelta) -> WebSession | None:
    """The session if it exists, has not expired and was used within ``idle``; touches it."""
    row = db.get(WebSession, id_hash)
    now = utc_now()
    if row is None:
        return None
    if row.expires_at <= now or row.last_seen_at + idle <= now:
        db.delete(row)
        return None
    if now - row.last_seen_at > TOUCH_INTERVAL:  # not a write on every request
        row.last_seen_at = now
    return row


def drop_session(db: Session, id_hash: str) -> None:
    db.execute(delete(WebSession).where(WebSession.id_hash == id_hash))


def drop_sessions_of(db: Session, trader_id: str) -> None:
    db.execute(delete(WebSession).where(WebSession.trader_id == trader_id))


def purge_expired_sessions(db: Session) -> int:
    result = db.execute(delete(WebSession).where(WebSession.expires_at <= utc_now()))
    return int(getattr(result, "rowcount", 0) or 0)


# --- API tokens -----------------------------------------------------------------------------------------


def add_token(db: Session, token_id: str, trader_id: str, name: str, scope: str, token_hash: str) -> ApiToken:
    row = ApiToken(id=token_id, trader_id=trader_id, name=name, scope=scope, token_hash=token_hash)
    db.add(row)
    db.flush()
    return row


def token_by_hash(db: Session, token_hash: str) -> ApiToken | None:
    return db.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None)))


def tokens_of(db: Session, trader_id: str) -> Sequence[ApiToken]:
    query = select(ApiToken).where(ApiToken.trader_id == trader_id, ApiToken.revoked_at.is_(None))
    return db.scalars(query.order_by(ApiToken.created_at, ApiToken.id)).all()


def revoke_token(db: Session, trader_id: str, token_id: str) -> bool:
    """Revoke one of the trader's tokens; False if the trader has no such live token."""
    result = db.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.trader_id == trader_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utc_now())
    )
    return bool(getattr(result, "rowcount", 0))


# --- login throttle -------------------------------------------------------------------------------------


def locked_until(db: Session, keys: Sequence[str]) -> datetime | None:
    """The latest lock among ``keys`` that is still in force, if any."""
    now = utc_now()
    rows = db.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys))).all()
    locks = [r.locked_until for r in rows if r.locked_until is not None and r.locked_until > now]
    return max(locks) if locks else None


def record_failure(db: Session, keys: Sequence[str], limit: int, window: timedelta, lock: timedelta) -> None:
    """Count one failed login against every key; a key with ``limit`` failures in ``window`` is locked."""
    now = utc_now()
    for key in keys:
        row = db.get(LoginThrottle, key, with_for_update=True)
        if row is None:
            row = LoginThrottle(key=key, failures=0, window_start=now)
            db.add(row)
        if row.window_start + window <= now:
            row.failures, row.window_start = 0, now
        row.failures += 1
        if row.failures >= limit:
            row.locked_until = now + lock
            row.failures, row.window_start = 0, now
    db.flush()


def clear_failures(db: Session, keys: Sequence[str]) -> None:
    db.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(keys)))


def reserve_attempt(db: Session, key: str, limit: int, window: timedelta) -> datetime | None:
    """Count an attempt *before* it is tried (so concurrent attempts cannot all slip past the check).

    Returns ``None`` when the attempt may go ahead (it is counted), or the time until which ``key`` is
    refused when ``limit`` attempts are already counted in its window (nothing is counted then). A caller
    whose attempt succeeded takes it back with :func:`release_attempt`."""
    now = utc_now()
    row = db.get(LoginThrottle, key, with_for_update=True)
    if row is None:
        row = LoginThrottle(key=key, failures=0, window_start=now)
        db.add(row)
    if row.locked_until is not None and row.locked_until > now:
        return row.locked_until
    if row.window_start + window <= now:
        row.failures, row.window_start, row.locked_until = 0, now, None
    if row.failures >= limit:
        row.locked_until = row.window_start + window
        db.flush()
        return row.locked_until
    row.failures += 1
    db.flush()
    return None


def release_attempt(db: Session, key: str) -> None:
    """Take back one attempt counted by :func:`reserve_attempt` (it succeeded)."""
    row = db.get(LoginThrottle, key, with_for_update=True)
    if row is not None and row.failures > 0:
        row.failures -= 1
        db.flush()


def is_locked(db: Session, key: str, limit: int, window: timedelta) -> bool:
    """Whether ``key`` would refuse an attempt now (without counting one)."""
    row = db.get(LoginThrottle, key)
    if row is None:
        return False
    now = utc_now()
    if row.locked_until is not None and row.locked_until > now:
        return True
    return row.window_start + window > now and row.failures >= limit
