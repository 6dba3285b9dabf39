"""Register, sign in and out, change the password. Sessions live in an HttpOnly cookie, rotated at every
sign-in and password change; writes from the browser need the CSRF token returned here."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mtrobot.storage import traders as trader_repo
from mtrobot.storage.models import Trader
from mtrobot.web import security_throttle as throttle
from mtrobot.web.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    CallerDep,
    DbDep,
    SessionCallerDep,
    StateDep,
)
from mtrobot.web.errors import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    TooManyAttempts,
    problem_responses,
)
from mtrobot.web.schemas import LoginRequest, PasswordChange, SessionPublic, TraderCreate, TraderPublic
from mtrobot.web.security import digest, hash_password, new_id, new_secret, verify_password
from mtrobot.web.security_throttle import client_address
from mtrobot.web.state import AppState

router = APIRouter(prefix="/auth", tags=["auth"])


def start_session(response: Response, db: Session, state: AppState, trader: Trader) -> SessionPublic:
    """A fresh session id and CSRF token (never reuse one from before sign-in: session fixation)."""
    token, csrf = new_secret(), new_secret(24)
    row = trader_repo.add_session(db, digest(token), trader.id, csrf, state.options.session_ttl)
    max_age = int(state.options.session_ttl.total_seconds())
    secure = state.options.cookie_secure
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, httponly=True, secure=secure, samesite="lax", path="/"
    )
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, httponly=False, secure=secure, samesite="strict")
    return SessionPublic(
        trader=TraderPublic.model_validate(trader), csrf_token=csrf, expires_at=row.expires_at
    )


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 422, 429),
    summary="Create a trader account and sign in",
)
def register(
    body: TraderCreate, request: Request, response: Response, db: DbDep, state: StateDep
) -> SessionPublic:
    opts = state.options
    address = client_address(request, state.trusted_proxies)
    try:
        throttle.reserve(
            db, [throttle.Limit(f"register:{address}", opts.register_limit, opts.register_window)]
        )
    except throttle.Refused as exc:
        raise TooManyAttempts(
            _wait_words("too many registrations from your address", exc), exc.retry_after_s
        ) from None
    if trader_repo.trader_by_email(db, body.email) is not None:
        raise Conflict("an account with this e-mail address exists; sign in instead", field="email")
    trader = trader_repo.add_trader(
        db, new_id("trd_"), body.email, body.name, hash_password(body.password.get_secret_value())
    )
    try:
        session = start_session(response, db, state, trader)
        db.commit()
    except IntegrityError:
        db.rollback()
        raise Conflict("an account with this e-mail address exists; sign in instead", field="email") from None
    return session


@router.post("/login", responses=problem_responses(401, 422, 429), summary="Sign in with e-mail and password")
def login(
    body: LoginRequest, request: Request, response: Response, db: DbDep, state: StateDep
) -> SessionPublic:
    """Each attempt is counted before the password is checked (concurrent guesses cannot slip past), against
    the e-mail address and the client address; a correct password takes its attempt back. A locked client
    address turns away wrong passwords only: other traders behind it still sign in with theirs."""
    opts = state.options
    address = client_address(request, state.trusted_proxies)
    by_email = throttle.Limit(f"email:{body.email.lower()}", opts.login_limit, opts.login_window)
    by_address = throttle.Limit(f"ip:{address}", opts.login_limit * 4, opts.login_window)
    address_locked = throttle.locked(db, by_address)
    try:
        throttle.reserve(db, [by_email] if address_locked else [by_email, by_address])
    except throttle.Refused as exc:
        raise TooManyAttempts(_wait_words("too many failed sign-ins", exc), exc.retry_after_s) from None
    counted = [by_email.key] + ([] if address_locked else [by_address.key])
    trader = trader_repo.trader_by_email(db, body.email)
    if not verify_password(trader.password_hash if trader else None, body.password.get_secret_value()):
        if address_locked:
            raise TooManyAttempts("too many failed sign-ins from your address; try again later", 60)
        raise NotAuthenticated("wrong e-mail address or password", code="bad_credentials")
    assert trader is not None
    throttle.release(db, counted[1:])
    trader_repo.clear_failures(db, counted[:1])
    trader_repo.purge_expired_sessions(db)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        trader_repo.drop_session(db, digest(old))
    session = start_session(response, db, state, trader)
    db.commit()
    return session


def _wait_words(what: str, exc: throttle.Refused) -> str:
    minutes = exc.retry_after_s // 60 + 1
    return f"{what}; try again in {minutes} minute{'s' if minutes > 1 else ''}"


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401, 403))
def logout(caller: SessionCallerDep, response: Response, db: DbDep) -> None:
    assert caller.session_hash is not None
    trader_repo.drop_session(db, caller.session_hash)
    db.commit()
    end_session(response)


@router.get("/me", responses=problem_responses(401, 404))
def me(caller: CallerDep, db: DbDep) -> TraderPublic:
    trader = trader_repo.trader_by_id(db, caller.trader_id)
    if trader is None:
        raise NotFound("your trader account no longer exists")
    return TraderPublic.model_validate(trader)


@router.post(
    "/password",
    responses=problem_responses(401, 403, 404, 422),
    summary="Change the password; every other session is signed out",
)
def change_password(
    body: PasswordChange, caller: SessionCallerDep, response: Response, db: DbDep, state: StateDep
) -> SessionPublic:
    trader = trader_repo.trader_by_id(db, caller.trader_id)
    if trader is None:
        raise NotFound("your trader account no longer exists")
    if not verify_password(trader.password_hash, body.current_password.get_secret_value()):
        raise InvalidInput("the current password is wrong", field="current_password", code="bad_credentials")
    trader.password_hash = hash_password(body.new_password.get_secret_value())
    trader.password_changed_at = datetime.now(UTC)
    trader_repo.drop_sessions_of(db, trader.id)
    session = start_session(response, db, state, trader)
    db.commit()
    return session
