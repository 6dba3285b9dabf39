"""Request dependencies: the database session, the caller (session cookie or API token) and the caller's
own account. Routes declare them with the ``Annotated`` aliases at the bottom and stay a screen long.

Tenant scope is structural: an account is only ever loaded through :func:`owned_account`, which filters by
the caller's trader id, so another trader's id is simply "not found".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from mtrobot.core.ids import is_account_id
from mtrobot.storage import accounts as account_repo
from mtrobot.storage import traders as trader_repo
from mtrobot.storage.models import Mt5Account, utc_now
from mtrobot.web.errors import Forbidden, NotAuthenticated, NotFound
from mtrobot.web.security import digest, same
from mtrobot.web.state import AppState

SESSION_COOKIE = "mtrobot_session"
CSRF_COOKIE = "mtrobot_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Declared as security schemes so the OpenAPI document tells clients how to authenticate.
_bearer = HTTPBearer(auto_error=False, description="a personal API token: 'Authorization: Bearer mtr_...'")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="the browser session")
_csrf = APIKeyHeader(name=CSRF_HEADER, auto_error=False, description="CSRF token for browser writes")


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.mtrobot
    return state


StateDep = Annotated[AppState, Depends(app_state)]


def db_session(state: StateDep) -> Iterator[Session]:
    """A session per request; routes commit what they change, anything uncommitted is rolled back."""
    with state.sessions() as db:
        yield db


DbDep = Annotated[Session, Depends(db_session)]


@dataclass(frozen=True)
class Caller:
    trader_id: str
    via: Literal["session", "token"]
    scope: Literal["read", "trade", "session"]
    session_hash: str | None = None
    token_id: str | None = None

    @property
    def can_trade(self) -> bool:
        return self.scope in ("trade", "session")


def current_caller(
    request: Request,
    db: DbDep,
    state: StateDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
    csrf: Annotated[str | None, Depends(_csrf)],
) -> Caller:
    """Who is calling. A ``read`` token is refused here for every write, whatever the route."""
    if bearer is not None:
        caller = _token_caller(db, bearer.credentials)
    elif cookie:
        caller = _session_caller(db, state, cookie, csrf, request.method)
    else:
        raise NotAuthenticated("sign in, or send an API token as 'Authorization: Bearer ...'")
    db.commit()
    if request.method not in SAFE_METHODS and caller.scope == "read":
        raise Forbidden(
            "this API token has the 'read' scope: it cannot place, change or close orders or change "
            "anything; create a 'trade' token for that",
            code="read_only_token",
        )
    return caller


def _token_caller(db: Session, token: str) -> Caller:
    row = trader_repo.token_by_hash(db, digest(token))
    if row is None:
        raise NotAuthenticated("the API token is unknown or was revoked", code="bad_token")
    now = utc_now()
    if row.last_used_at is None or now - row.last_used_at > trader_repo.TOUCH_INTERVAL:
        row.last_used_at = now
    scope: Literal["read", "trade"] = "trade" if row.scope == "trade" else "read"
    return Caller(row.trader_id, "token", scope, token_id=row.id)


def _session_caller(db: Session, state: AppState, cookie: str, csrf: str | None, method: str) -> Caller:
    id_hash = digest(cookie)
    row = trader_repo.live_session(db, id_hash, state.options.session_idle)
    if row is None:
        db.commit()
        raise NotAuthenticated("your session has expired; please sign in again", code="session_expired")
    if method not in SAFE_METHODS and (csrf is None or not same(csrf, row.csrf_token)):
        raise Forbidden(f"missing or wrong {CSRF_HEADER} header", code="csrf")
    return Caller(row.trader_id, "session", "session", session_hash=id_hash)


CallerDep = Annotated[Caller, Depends(current_caller)]


def socket_caller(
    db: Session, state: AppState, headers: Mapping[str, str], cookies: Mapping[str, str]
) -> Caller:
    """Who opens a WebSocket: a token in the ``Authorization`` header, or the session cookie. A browser sends
    the cookie to a socket opened by any site (no CSRF header is possible there), so a cookie is only taken
    from a page of this origin."""
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        caller = _token_caller(db, authorization[7:].strip())
    elif cookies.get(SESSION_COOKIE):
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != headers.get("host"):
            raise Forbidden("this live stream only serves pages of this site", code="origin")
        caller = _session_caller(db, state, cookies[SESSION_COOKIE], None, "GET")
    else:
        raise NotAuthenticated("sign in, or send an API token as 'Authorization: Bearer ...'")
    db.commit()
    return caller


def session_caller(caller: CallerDep) -> Caller:
    """Only a signed-in browser session (not an API token) may manage tokens and the password."""
    if caller.via != "session":
        raise Forbidden("API tokens cannot do this; sign in with your password", code="session_required")
    return caller


SessionCallerDep = Annotated[Caller, Depends(session_caller)]


def owned_account(account_id: str, caller: CallerDep, db: DbDep) -> Mt5Account:
    account = (
        account_repo.owned_account(db, caller.trader_id, account_id) if is_account_id(account_id) else None
    )
    if account is None:
        raise NotFound(f"you have no account '{account_id}'", code="account_not_found")
    return account


AccountDep = Annotated[Mt5Account, Depends(owned_account)]
