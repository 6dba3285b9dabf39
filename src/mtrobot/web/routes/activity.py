"""The account's activity log: one plain-language line per event, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mtrobot.storage import orders as order_repo
from mtrobot.web.deps import AccountDep, DbDep
from mtrobot.web.errors import problem_responses
from mtrobot.web.schemas import ActivityPublic

router = APIRouter(prefix="/accounts/{account_id}/activity", tags=["activity"])


@router.get("", responses=problem_responses(401, 404, 422))
def list_activity(
    account: AccountDep,
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="page: lines older than this id")] = None,
) -> list[ActivityPublic]:
    rows = order_repo.activity_of(db, account.id, limit=limit, before=before)
    return [ActivityPublic.model_validate(r) for r in rows]
