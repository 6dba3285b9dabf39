"""Placing, changing, cancelling and closing: each becomes one ``OrderRequest`` on the bus.

The order is stored first (state ``received``), then published to JetStream with ``Nats-Msg-Id`` so a
retry is deduplicated. If the bus is down the trader gets a 503 and the stored order is removed when it
certainly never left; if the outcome is ambiguous the order stays and a retry with the same ``order_id``
is safe (the stream and the connector both deduplicate by it). Nothing is ever lost silently.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from mtrobot.core.events import AccountSnapshot
from mtrobot.core.lifecycle import OrderState
from mtrobot.core.orders import OrderAction, OrderRequest
from mtrobot.logging import get_logger
from mtrobot.storage import orders as order_repo
from mtrobot.storage.models import Mt5Account, Order
from mtrobot.web.bus import BusUnavailable
from mtrobot.web.errors import Conflict, InvalidInput, NotFound, Unavailable, plain_message
from mtrobot.web.schemas import OrderPublic
from mtrobot.web.state import AppState

log = get_logger(__name__)

_STORED = ("action", "symbol", "order_type", "volume", "price", "stoplimit", "sl", "tp", "deviation",
           "filling", "position", "ticket", "comment")  # fmt: skip


_MISSING = re.compile(r"^Value error, (\w+)(?:, \w+)* required for action")
"""OrderRequest's own check of the fields an action or order type needs (the first one is named)."""


def new_order_id() -> str:
    # 13 characters: short enough to travel verbatim in the broker's comment tag.
    return "w" + secrets.token_hex(6)


def public(row: Order) -> OrderPublic:
    return OrderPublic.model_validate(row)


def build_request(account_id: str, fields: dict[str, Any]) -> OrderRequest:
    """The bus message; a missing or inconsistent field becomes a 422 naming it."""
    values = {k: v for k, v in fields.items() if v is not None}
    values.setdefault("order_id", new_order_id())
    try:
        return OrderRequest(account=account_id, submitted_at=datetime.now(UTC), **values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or None
        missing = _MISSING.match(str(first.get("msg", ""))) if field is None else None
        if missing:  # a model-level "price required" names no field: name it, so a form can mark it
            kind = str(values.get("order_type", values.get("action", "this"))).replace("_", " ")
            name = missing[1]
            raise InvalidInput(f"{name.capitalize()} is required for a {kind} order.", field=name) from None
        raise InvalidInput(plain_message(first), field=field) from None


def _row_fields(request: OrderRequest) -> dict[str, Any]:
    data = request.model_dump(mode="json")
    return {k: data[k] for k in _STORED}


def _store(state: AppState, request: OrderRequest, parent: str | None) -> tuple[Order, bool]:
    """Insert the order, or recognise a retry of the same one. Returns (row, is_new)."""
    try:
        with state.sessions.begin() as db:
            existing = order_repo.order_of(db, request.account, request.order_id)
            if existing is None:
                fields = _row_fields(request)
                row = order_repo.add_order(
                    db, request.account, request.order_id, parent_order_id=parent, state="received", **fields
                )
                return row, True
    except IntegrityError:  # the same order id arrived twice at once: the other request stored it
        with state.sessions() as db:
            existing = order_repo.order_of(db, request.account, request.order_id)
    if existing is None:  # pragma: no cover - an integrity error always means the row exists
        raise Conflict(f"order id '{request.order_id}' could not be stored; retry", field="order_id")
    if any(getattr(existing, k) != v for k, v in _row_fields(request).items()):
        raise Conflict(
            f"order id '{request.order_id}' was already used for a different order",
            field="order_id",
            code="order_id_taken",
        )
    return existing, False


def _forget(state: AppState, account_id: str, order_id: str) -> None:
    with state.sessions.begin() as db:
        order_repo.delete_order(db, account_id, order_id)


def _log_submitted(state: AppState, request: OrderRequest) -> None:
    what = {
        OrderAction.OPEN: f"{request.order_type} {request.volume:g} lots {request.symbol}"
        if request.volume
        else request.symbol,
        OrderAction.CLOSE: f"close position {request.position} ({request.symbol})",
        OrderAction.MODIFY: f"change {'position ' + str(request.position) if request.position else 'order'} "
        f"({request.symbol})",
        OrderAction.CANCEL: f"cancel pending order {request.ticket} ({request.symbol})",
    }[request.action]
    with state.sessions.begin() as db:
        message = f"Order {request.order_id}: {what} submitted."
        order_repo.log_activity(db, request.account, "submitted", message, request.order_id)


async def submit(state: AppState, request: OrderRequest, parent: str | None = None) -> OrderPublic:
    row, is_new = await run_in_threadpool(_store, state, request, parent)
    if not is_new and row.state != OrderState.RECEIVED.value:
        return public(row)  # a retry of an order already under way: nothing to send again
    try:
        await state.bus.publish_order(request)
    except BusUnavailable as exc:
        if not exc.maybe_sent and is_new:
            await run_in_threadpool(_forget, state, request.account, request.order_id)
            raise Unavailable(
                f"{exc}; the order was not sent. Try again shortly.", code="bus_unavailable"
            ) from None
        raise Unavailable(
            f"{exc}. The order may have been submitted: retry with the same order_id "
            f"'{request.order_id}' (safe, it is never executed twice) or check the order list.",
            code="bus_uncertain",
        ) from None
    if is_new:
        await run_in_threadpool(_log_submitted, state, request)
    return public(row)


@dataclass(frozen=True, slots=True)
class Pending:
    """A pending order at the broker, as a modify or cancel names it."""

    symbol: str
    ticket: int


def _original(state: AppState, account: Mt5Account, order_id: str) -> Order | None:
    with state.sessions() as db:
        return order_repo.order_of(db, account.id, order_id)


async def _snapshot_before_sending(state: AppState, account: Mt5Account) -> AccountSnapshot | None:
    """The account's latest snapshot, read to name what an order is about to act on: a bus that cannot be
    read is a 503 saying nothing was sent."""
    try:
        return await state.bus.latest_snapshot(account.id)
    except BusUnavailable as exc:
        raise Unavailable(f"{exc}; nothing was sent", code="bus_unavailable") from None


def _ticket(entry: dict[str, Any]) -> int:
    """A snapshot entry's broker ticket (0 when it has none)."""
    return int(entry.get("ticket", 0) or 0)


async def _pending_in_snapshot(state: AppState, account: Mt5Account, order_id: str) -> Pending | None:
    """A pending order placed by the account's robots (not through this API) is known by the snapshot."""
    snapshot = await _snapshot_before_sending(state, account)
    for order in snapshot.orders if snapshot else []:
        if order.get("order_id") == order_id and _ticket(order) > 0:
            return Pending(str(order.get("symbol")), _ticket(order))
    return None


async def pending_order(state: AppState, account: Mt5Account, order_id: str) -> Pending:
    """An order that is waiting at the broker (accepted, with a ticket), for modify or cancel: one placed
    here (the order list knows it) or one the account's latest snapshot lists as pending under that id."""
    row = await run_in_threadpool(_original, state, account, order_id)
    if row is None:
        found = await _pending_in_snapshot(state, account, order_id)
        if found is None:
            raise NotFound(f"account {account.id} has no order '{order_id}'", code="order_not_found")
        return found
    if row.action != OrderAction.OPEN.value or OrderState(row.state).is_terminal:
        raise Conflict(
            f"order '{order_id}' is {row.state}; there is nothing left to change", code="order_final"
        )
    if row.ticket is None:
        raise Conflict(
            f"the broker has not accepted order '{order_id}' yet; try again in a moment",
            code="order_not_accepted",
        )
    return Pending(row.symbol, row.ticket)


async def pending_by_ticket(state: AppState, account: Mt5Account, ticket: int) -> tuple[Pending, str | None]:
    """Pending order ``ticket`` as the latest snapshot lists it, whatever its comment (a hashed ``h-`` tag
    or one written outside the platform names no order id), and the order placed here it came from, if any
    (the cancel's parent)."""
    snapshot = await _snapshot_before_sending(state, account)
    for order in snapshot.orders if snapshot else []:
        if _ticket(order) == ticket:
            row = await run_in_threadpool(_placed_with_ticket, state, account, ticket)
            return Pending(str(order.get("symbol")), ticket), row.order_id if row else None
    raise NotFound(f"account {account.id} has no pending order {ticket}", code="order_not_found")


def _placed_with_ticket(state: AppState, account: Mt5Account, ticket: int) -> Order | None:
    with state.sessions() as db:
        return order_repo.placed_order_with_ticket(db, account.id, ticket)


async def position_symbol(state: AppState, account: Mt5Account, ticket: int, given: str | None) -> str:
    if given:
        return given
    snapshot = await _snapshot_before_sending(state, account)
    for position in snapshot.positions if snapshot else []:
        if _ticket(position) == ticket:
            return str(position.get("symbol"))
    raise NotFound(f"account {account.id} has no open position {ticket}", code="position_not_found")
