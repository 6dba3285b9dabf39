"""Personal API tokens: created with a scope, shown once, stored as a hash, revocable."""

from __future__ import annotations

from fastapi import APIRouter, status

from mtrobot.storage import traders as trader_repo
from mtrobot.web.deps import DbDep, SessionCallerDep
from mtrobot.web.errors import NotFound, problem_responses
from mtrobot.web.schemas import TokenCreate, TokenCreated, TokenPublic
from mtrobot.web.security import digest, new_api_token, new_id

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.get("", responses=problem_responses(401, 403))
def list_tokens(caller: SessionCallerDep, db: DbDep) -> list[TokenPublic]:
    return [TokenPublic.model_validate(t) for t in trader_repo.tokens_of(db, caller.trader_id)]


@router.post("", status_code=status.HTTP_201_CREATED, responses=problem_responses(401, 403, 422))
def create_token(body: TokenCreate, caller: SessionCallerDep, db: DbDep) -> TokenCreated:
    secret = new_api_token()
    row = trader_repo.add_token(db, new_id("tok_"), caller.trader_id, body.name, body.scope, digest(secret))
    db.commit()
    return TokenCreated.model_validate({**TokenPublic.model_validate(row).model_dump(), "token": secret})


@router.delete(
    "/{token_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401, 403, 404)
)
def revoke_token(token_id: str, caller: SessionCallerDep, db: DbDep) -> None:
    if not trader_repo.revoke_token(db, caller.trader_id, token_id):
        raise NotFound(f"you have no token '{token_id}'", code="token_not_found")
    db.commit()
