"""Orders and positions of one account. Every write is refused for a ``read`` token (see deps)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from mtrobot.core.orders import OrderAction
from mtrobot.storage import orders as order_repo
from mtrobot.web import orders as service
from mtrobot.web.bus import BusUnavailable
from mtrobot.web.deps import AccountDep, DbDep, StateDep
from mtrobot.web.errors import NotFound, Unavailable, problem_responses
from mtrobot.web.schemas import (
    OrderCreate,
    OrderModify,
    OrderPublic,
    PositionClose,
    PositionModify,
    PositionsPublic,
)

router = APIRouter(prefix="/accounts/{account_id}", tags=["orders"])

Ticket = Annotated[int, Path(gt=0, lt=2**63, description="the broker's position ticket")]
OrderTicket = Annotated[int, Path(gt=0, lt=2**63, description="the broker's pending order ticket")]
OrderIdPath = Annotated[str, Path(max_length=64)]
CancelRef = Annotated[
    str | None, Query(max_length=24, description="id for this cancel request (safe retries)")
]
WRITE = problem_responses(401, 403, 404, 409, 422, 503)


@router.get("/orders", responses=problem_responses(401, 404, 422))
def list_orders(
    account: AccountDep,
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[
        str | None, Query(max_length=24, description="page: orders older than this one")
    ] = None,
    open_only: bool = False,
) -> list[OrderPublic]:
    rows = order_repo.orders_of(db, account.id, limit=limit, before=before, open_only=open_only)
    return [service.public(r) for r in rows]


@router.post("/orders", status_code=status.HTTP_202_ACCEPTED, responses=WRITE, summary="Place an order")
async def place_order(body: OrderCreate, account: AccountDep, state: StateDep) -> OrderPublic:
    """Accepted for execution: follow its state here or in the activity log."""
    request = service.build_request(account.id, body.model_dump() | {"action": OrderAction.OPEN})
    return await service.submit(state, request)


@router.get("/orders/{order_id}", responses=problem_responses(401, 404, 422))
def get_order(order_id: OrderIdPath, account: AccountDep, db: DbDep) -> OrderPublic:
    row = order_repo.order_of(db, account.id, order_id)
    if row is None:
        raise NotFound(f"account {account.id} has no order '{order_id}'", code="order_not_found")
    return service.public(row)


@router.patch(
    "/orders/{order_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=WRITE,
    summary="Change a pending order",
)
async def modify_order(
    order_id: OrderIdPath, body: OrderModify, account: AccountDep, state: StateDep
) -> OrderPublic:
    original = await service.pending_order(state, account, order_id)
    fields = body.model_dump() | {
        "action": OrderAction.MODIFY,
        "symbol": original.symbol,
        "ticket": original.ticket,
    }
    return await service.submit(state, service.build_request(account.id, fields), parent=order_id)


@router.delete(
    "/orders/{order_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=WRITE,
    summary="Cancel a pending order",
)
async def cancel_order(
    order_id: OrderIdPath,
    account: AccountDep,
    state: StateDep,
    order_ref: CancelRef = None,
) -> OrderPublic:
    original = await service.pending_order(state, account, order_id)
    fields = {
        "order_id": order_ref,
        "action": OrderAction.CANCEL,
        "symbol": original.symbol,
        "ticket": original.ticket,
    }
    return await service.submit(state, service.build_request(account.id, fields), parent=order_id)


@router.delete(
    "/pending-orders/{ticket}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=WRITE,
    summary="Cancel a pending order by its broker ticket",
)
async def cancel_pending_order(
    ticket: OrderTicket,
    account: AccountDep,
    state: StateDep,
    order_ref: CancelRef = None,
) -> OrderPublic:
    """Any pending order the latest snapshot lists, also one whose comment names no order id (a long
    order id's hashed tag, or an order placed in the terminal)."""
    pending, parent = await service.pending_by_ticket(state, account, ticket)
    fields = {"order_id": order_ref, "action": OrderAction.CANCEL, "symbol": pending.symbol, "ticket": ticket}
    return await service.submit(state, service.build_request(account.id, fields), parent=parent)


@router.get("/positions", responses=problem_responses(401, 404, 503))
async def list_positions(account: AccountDep, state: StateDep) -> PositionsPublic:
    """Open positions and pending orders as of the agent's latest snapshot."""
    try:
        snapshot = await state.bus.latest_snapshot(account.id)
    except BusUnavailable as exc:
        raise Unavailable(str(exc), code="bus_unavailable") from None
    if snapshot is None:
        return PositionsPublic(account_id=account.id, as_of=None, positions=[], orders=[])
    return PositionsPublic(
        account_id=account.id, as_of=snapshot.ts, positions=snapshot.positions, orders=snapshot.orders
    )


@router.patch(
    "/positions/{ticket}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=WRITE,
    summary="Change SL/TP of a position",
)
async def modify_position(
    ticket: Ticket, body: PositionModify, account: AccountDep, state: StateDep
) -> OrderPublic:
    symbol = await service.position_symbol(state, account, ticket, body.symbol)
    fields = body.model_dump() | {"action": OrderAction.MODIFY, "symbol": symbol, "position": ticket}
    return await service.submit(state, service.build_request(account.id, fields))


@router.post(
    "/positions/{ticket}/close",
    status_code=status.HTTP_202_ACCEPTED,
    responses=WRITE,
    summary="Close a position, fully or partly",
)
async def close_position(
    ticket: Ticket, body: PositionClose, account: AccountDep, state: StateDep
) -> OrderPublic:
    symbol = await service.position_symbol(state, account, ticket, body.symbol)
    fields = body.model_dump() | {"action": OrderAction.CLOSE, "symbol": symbol, "position": ticket}
    return await service.submit(state, service.build_request(account.id, fields))
