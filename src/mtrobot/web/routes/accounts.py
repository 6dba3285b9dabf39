"""MT5 accounts: list, validate a draft, connect (tested, then stored sealed), re-test, remove."""

from __future__ import annotations

from fastapi import APIRouter, status

from mtrobot.storage import accounts as account_repo
from mtrobot.web import accounts as service
from mtrobot.web.demo_accounts import open_demo_account
from mtrobot.web.deps import AccountDep, CallerDep, DbDep, StateDep
from mtrobot.web.errors import NotFound, problem_responses
from mtrobot.web.schemas import (
    AccountCreate,
    AccountDraft,
    AccountPublic,
    ConnectionTest,
    DemoAccountCreate,
    DraftCheck,
    ServerPublic,
)

router = APIRouter(tags=["accounts"])


@router.get("/brokers/servers", responses=problem_responses(401))
def list_servers(_caller: CallerDep, state: StateDep) -> list[ServerPublic]:
    """The broker servers this platform can connect to (the connect form's choices)."""
    return [
        ServerPublic(name=s.name, company=s.company, simulated=s.backend.startswith("sim"))
        for s in state.servers().values()
    ]


@router.get("/accounts", responses=problem_responses(401))
def list_accounts(caller: CallerDep, db: DbDep) -> list[AccountPublic]:
    return [AccountPublic.model_validate(a) for a in account_repo.accounts_of(db, caller.trader_id)]


@router.post("/accounts/validate", responses=problem_responses(401, 403, 422), summary="Check a connect form")
def validate_draft(body: AccountDraft, _caller: CallerDep, state: StateDep) -> DraftCheck:
    """Field-by-field checks while the trader types; tests nothing against the broker."""
    return service.check_draft(state, body)


@router.post(
    "/accounts",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422, 429, 503),
    summary="Connect an MT5 account (tested before it is stored)",
)
async def connect_account(body: AccountCreate, caller: CallerDep, state: StateDep) -> AccountPublic:
    return await service.connect_account(state, caller.trader_id, body)


@router.post(
    "/brokers/demo-accounts",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422, 429, 503),
    summary="Open a simulated demo account and connect it",
)
async def open_demo(body: DemoAccountCreate, caller: CallerDep, state: StateDep) -> AccountPublic:
    """Only on a platform with a simulated broker (the embedded one): the simulator opens the account with a
    password nobody sees, and it is connected like any other (tested, then stored sealed)."""
    return await open_demo_account(state, caller.trader_id, body)


@router.get("/accounts/{account_id}", responses=problem_responses(401, 404))
def get_account(account: AccountDep) -> AccountPublic:
    return AccountPublic.model_validate(account)


@router.post("/accounts/{account_id}/test", responses=problem_responses(401, 403, 404, 429))
async def test_account(account: AccountDep, state: StateDep) -> ConnectionTest:
    """Log in once with the stored credentials, in an isolated process."""
    outcome = await service.retest_account(state, account)
    return ConnectionTest(ok=outcome.ok, code=outcome.code, message=outcome.message, field=outcome.field)


@router.delete(
    "/accounts/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
def remove_account(account: AccountDep, caller: CallerDep, db: DbDep) -> None:
    """Forget the account, its sealed password, portfolio, orders and activity."""
    if not account_repo.remove_account(db, caller.trader_id, account.id):
        raise NotFound(f"you have no account '{account.id}'", code="account_not_found")
    db.commit()
