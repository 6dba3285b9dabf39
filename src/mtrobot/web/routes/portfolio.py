"""An account's portfolio: which robots run on which symbols, their risk, and whether it is active.

A new portfolio is checked against the robot catalogue (an unknown robot or parameters that do not fit
its declaration are refused with the field named), saved in the database, and written to the hub
(``portfolio.{account}`` in ``central_hub``), which the account's agent watches and hot-loads.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from mtrobot.hub.schemas import AccountRisk, Allocation
from mtrobot.robots.portfolio import check_portfolio
from mtrobot.storage import accounts as account_repo
from mtrobot.storage.models import Portfolio
from mtrobot.web.deps import AccountDep, DbDep, StateDep
from mtrobot.web.errors import InvalidFields, plain_message, problem_responses
from mtrobot.web.portfolios import publish_portfolio
from mtrobot.web.schemas import PortfolioPublic, PortfolioUpdate
from mtrobot.web.state import AppState

router = APIRouter(prefix="/accounts/{account_id}/portfolio", tags=["portfolio"])


def _public(row: Portfolio, hub_revision: int | None = None) -> PortfolioPublic:
    return PortfolioPublic(
        account_id=row.account_id,
        active=row.active,
        robots=[Allocation.model_validate(r) for r in row.robots],
        risk=AccountRisk.model_validate(row.risk or {}),
        updated_at=row.updated_at,
        hub_revision=hub_revision,
    )


@router.get("", responses=problem_responses(401, 404))
def get_portfolio(account: AccountDep, db: DbDep) -> PortfolioPublic:
    row = account_repo.portfolio_of(db, account.id)
    db.commit()
    return _public(row)


@router.put("", responses=problem_responses(401, 403, 404, 422))
async def put_portfolio(body: PortfolioUpdate, account: AccountDep, state: StateDep) -> PortfolioPublic:
    problems = check_portfolio(body, state.catalogue)
    if problems:
        code = "no_such_robot" if any(p.code == "no_such_robot" for p in problems) else "invalid_parameter"
        words = [(p.field, plain_message(p.raw) if p.raw else p.message) for p in problems]
        raise InvalidFields(words, code=code)
    document = body.model_dump(mode="json")
    saved = await run_in_threadpool(_save, state, account.id, document)
    revision = await publish_portfolio(state, account.id, document)
    return saved.model_copy(update={"hub_revision": revision})


def _save(state: AppState, account_id: str, document: dict[str, Any]) -> PortfolioPublic:
    with state.sessions.begin() as db:
        robots, risk = document["robots"], document["risk"]
        row = account_repo.save_portfolio(db, account_id, document["active"], robots, risk)
        return _public(row)
