"""The account's activity log (one plain-language line per event, newest first) and its equity history."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from mtrobot.storage import orders as order_repo
from mtrobot.storage.models import utc_now
from mtrobot.web.deps import AccountDep, DbDep
from mtrobot.web.errors import problem_responses
from mtrobot.web.schemas import ActivityPublic, EquityPointPublic

router = APIRouter(prefix="/accounts/{account_id}", tags=["activity"])


@router.get("/activity", responses=problem_responses(401, 404, 422))
def list_activity(
    account: AccountDep,
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="page: lines older than this id")] = None,
) -> list[ActivityPublic]:
    rows = order_repo.activity_of(db, account.id, limit=limit, before=before)
    return [ActivityPublic.model_validate(r) for r in rows]


@router.get("/equity", responses=problem_responses(401, 404, 422))
def equity_history(
    account: AccountDep,
    db: DbDep,
    hours: Annotated[int, Query(ge=1, le=24 * 90, description="how far back")] = 24,
) -> list[EquityPointPublic]:
    """Balance and equity over time, oldest first: a point a minute and one at every balance change."""
    rows = order_repo.equity_of(db, account.id, since=utc_now() - timedelta(hours=hours))
    return [EquityPointPublic.model_validate(r) for r in rows]
