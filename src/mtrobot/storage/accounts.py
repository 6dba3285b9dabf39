"""MT5 accounts (always reached through their trader), their sealed credentials, and portfolios."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mtrobot.storage.models import Mt5Account, Portfolio, Trader, utc_now

MAX_ACCOUNTS_PER_TRADER = 3


class AccountLimitReached(Exception):
    """The trader already has the maximum number of MT5 accounts."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} MT5 accounts per trader")
        self.limit = limit


class AccountAlreadyConnected(Exception):
    """This server and login are already connected on the platform."""


@dataclass(frozen=True)
class SealedColumns:
    """The four columns the vault's sealed record is stored in (the storage layer does not know the vault)."""

    key_id: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes


def accounts_of(db: Session, trader_id: str) -> Sequence[Mt5Account]:
    query = select(Mt5Account).where(Mt5Account.trader_id == trader_id)
    return db.scalars(query.order_by(Mt5Account.created_at, Mt5Account.id)).all()


def owned_account(db: Session, trader_id: str, account_id: str) -> Mt5Account | None:
    """The account if, and only if, it belongs to ``trader_id``."""
    return db.scalar(select(Mt5Account).where(Mt5Account.id == account_id, Mt5Account.trader_id == trader_id))


def account_by_id(db: Session, account_id: str) -> Mt5Account | None:
    """Unscoped lookup, for internal consumers (bus listeners, operator chores), never for a request."""
    return db.get(Mt5Account, account_id)


def all_accounts(db: Session) -> Sequence[Mt5Account]:
    """Every connected account, for the supervisor that runs one agent per account (never for a request)."""
    return db.scalars(select(Mt5Account).order_by(Mt5Account.created_at, Mt5Account.id)).all()


AGENT_STATES = ("active", "paused", "stopped", "quarantined")
RUNNING_AGENT_STATES = ("active", "paused", "quarantined")
"""An account in one of these has an agent; a paused or quarantined one with its trading gate closed."""


def accounts_with_agents(db: Session) -> Sequence[Mt5Account]:
    """Every account whose agent should run, for the supervisor (never for a request)."""
    query = select(Mt5Account).where(Mt5Account.agent_state.in_(RUNNING_AGENT_STATES))
    return db.scalars(query.order_by(Mt5Account.created_at, Mt5Account.id)).all()


def set_agent_state(db: Session, account_id: str, state: str, reason: str = "") -> bool:
    """Record whether the account's agent runs (see :data:`AGENT_STATES`); False if there is no account."""
    if state not in AGENT_STATES:
        raise ValueError(f"agent state must be one of {', '.join(AGENT_STATES)}, not {state!r}")
    result = db.execute(
        update(Mt5Account).where(Mt5Account.id == account_id).values(agent_state=state, agent_reason=reason)
    )
    return bool(getattr(result, "rowcount", 0))


def add_account(
    db: Session,
    *,
    account_id: str,
    trader_id: str,
    server: str,
    login: int,
    sealed: SealedColumns,
    label: str = "",
    backend: str = "sim",
    company: str = "",
    currency: str = "",
    limit: int = MAX_ACCOUNTS_PER_TRADER,
) -> Mt5Account:
    """Store a tested account with its sealed password; refuses a fourth account or a duplicate login."""
    # Take the write lock on the trader row before counting, so two racing connects cannot both pass the
    # count: a no-op UPDATE locks the row on PostgreSQL and takes SQLite's write lock (a SELECT ... FOR
    # UPDATE would be ignored by SQLite, whose driver does not even open a transaction for a SELECT).
    db.execute(update(Trader).where(Trader.id == trader_id).values(id=Trader.id))
    count = db.scalar(select(func.count()).select_from(Mt5Account).where(Mt5Account.trader_id == trader_id))
    if (count or 0) >= limit:
        raise AccountLimitReached(limit)
    taken = db.scalar(select(Mt5Account.id).where(Mt5Account.server == server, Mt5Account.login == login))
    if taken is not None:
        raise AccountAlreadyConnected(f"login {login} on {server} is already connected")
    now = utc_now()
    row = Mt5Account(
        id=account_id,
        trader_id=trader_id,
        label=label,
        server=server,
        login=login,
        backend=backend,
        company=company,
        currency=currency,
        created_at=now,
        tested_at=now,
        cred_key_id=sealed.key_id,
        cred_wrapped_key=sealed.wrapped_key,
        cred_nonce=sealed.nonce,
        cred_ciphertext=sealed.ciphertext,
    )
    db.add(row)
    db.add(Portfolio(account_id=account_id, active=False, robots=[], risk={}))
    db.flush()
    return row


def sealed_of(account: Mt5Account) -> SealedColumns:
    return SealedColumns(
        account.cred_key_id, account.cred_wrapped_key, account.cred_nonce, account.cred_ciphertext
    )


def remove_account(db: Session, trader_id: str, account_id: str) -> bool:
    row = owned_account(db, trader_id, account_id)
    if row is None:
        return False
    db.delete(row)
    db.flush()
    return True


def mark_tested(db: Session, account: Mt5Account, company: str, currency: str) -> None:
    account.tested_at = utc_now()
    account.company = company or account.company
    account.currency = currency or account.currency


# --- key rotation ---------------------------------------------------------------------------------------


def accounts_not_on_key(db: Session, key_id: str, batch: int = 100) -> Sequence[Mt5Account]:
    query = select(Mt5Account).where(Mt5Account.cred_key_id != key_id).order_by(Mt5Account.id).limit(batch)
    return db.scalars(query).all()


def replace_wrapped_key(
    db: Session, account_id: str, old_key_id: str, new_key_id: str, wrapped: bytes
) -> bool:
    """Swap the wrapped data key only if nobody changed the record meanwhile (compare-and-set)."""
    result = db.execute(
        update(Mt5Account)
        .where(Mt5Account.id == account_id, Mt5Account.cred_key_id == old_key_id)
        .values(cred_key_id=new_key_id, cred_wrapped_key=wrapped)
    )
    return bool(getattr(result, "rowcount", 0))


def replace_credential(db: Session, account_id: str, sealed: SealedColumns) -> None:
    """A new sealed password for the account (the old record is gone at commit)."""
    db.execute(
        update(Mt5Account)
        .where(Mt5Account.id == account_id)
        .values(
            cred_key_id=sealed.key_id,
            cred_wrapped_key=sealed.wrapped_key,
            cred_nonce=sealed.nonce,
            cred_ciphertext=sealed.ciphertext,
        )
    )


def key_ids_in_use(db: Session) -> set[str]:
    return set(db.scalars(select(Mt5Account.cred_key_id).distinct()).all())


# --- portfolios -----------------------------------------------------------------------------------------


def portfolio_of(db: Session, account_id: str) -> Portfolio:
    row = db.get(Portfolio, account_id)
    if row is None:
        row = Portfolio(account_id=account_id, active=False, robots=[], risk={})
        db.add(row)
        db.flush()
    return row


def save_portfolio(
    db: Session,
    account_id: str,
    active: bool,
    robots: list[dict[str, Any]],
    risk: dict[str, Any] | None = None,
) -> Portfolio:
    row = portfolio_of(db, account_id)
    row.active, row.robots, row.updated_at = active, robots, utc_now()
    if risk is not None:
        row.risk = risk
    db.flush()
    return row
