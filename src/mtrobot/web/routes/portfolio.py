"""An account's portfolio: which robots run on which symbols, and whether it is active."""

from __future__ import annotations

from fastapi import APIRouter

from mtrobot.storage import accounts as account_repo
from mtrobot.storage.models import Portfolio
from mtrobot.web.deps import AccountDep, DbDep
from mtrobot.web.errors import problem_responses
from mtrobot.web.schemas import PortfolioPublic, PortfolioUpdate, RobotEntry

router = APIRouter(prefix="/accounts/{account_id}/portfolio", tags=["portfolio"])


def _public(row: Portfolio) -> PortfolioPublic:
    robots = [RobotEntry.model_validate(r) for r in row.robots]
    return PortfolioPublic(
        account_id=row.account_id, active=row.active, robots=robots, updated_at=row.updated_at
    )


@router.get("", responses=problem_responses(401, 404))
def get_portfolio(account: AccountDep, db: DbDep) -> PortfolioPublic:
    row = account_repo.portfolio_of(db, account.id)
    db.commit()
    return _public(row)


@router.put("", responses=problem_responses(401, 403, 404, 422))
def put_portfolio(body: PortfolioUpdate, account: AccountDep, db: DbDep) -> PortfolioPublic:
    robots = [r.model_dump() for r in body.robots]
    row = account_repo.save_portfolio(db, account.id, body.active, robots)
    db.commit()
    return _public(row)
