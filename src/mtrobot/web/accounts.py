"""Connecting MT5 accounts: field checks as the trader types, the isolated connection test, sealing."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.concurrency import run_in_threadpool

from mtrobot.storage import accounts as account_repo
from mtrobot.storage.models import Mt5Account
from mtrobot.web import security_throttle as throttle
from mtrobot.web.config import ServerInfo
from mtrobot.web.connection import run_probe
from mtrobot.web.credentials import sealed_of, to_columns
from mtrobot.web.errors import Conflict, InvalidInput, TooManyAttempts, Unavailable
from mtrobot.web.probe import ProbeOutcome, unknown_server
from mtrobot.web.schemas import AccountCreate, AccountDraft, AccountPublic, DraftCheck, FieldCheck
from mtrobot.web.state import AppState

_LOGIN_MAX = 2**63 - 1


def check_server(state: AppState, server: str) -> FieldCheck:
    name = server.strip()
    if not name:
        return FieldCheck(valid=False, message="enter the broker's server name")
    servers = state.servers()
    if name in servers:
        return FieldCheck(valid=True)
    close = [s for s in servers if s.lower() == name.lower()]
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return FieldCheck(valid=False, message=unknown_server(name).message + hint)


def check_login(login: str | int) -> FieldCheck:
    text = str(login).strip()
    if not text.isdigit() or not text.isascii():
        return FieldCheck(valid=False, message="the login is the account number: digits only")
    if not 0 < int(text) <= _LOGIN_MAX:
        return FieldCheck(valid=False, message="this is not a valid account number")
    return FieldCheck(valid=True)


def check_password(present: bool) -> FieldCheck:
    if not present:
        return FieldCheck(valid=False, message="enter the account's master (trading) password")
    return FieldCheck(valid=True)


def check_draft(state: AppState, draft: AccountDraft) -> DraftCheck:
    fields: dict[str, FieldCheck] = {}
    if draft.server is not None:
        fields["server"] = check_server(state, draft.server)
    if draft.login is not None:
        fields["login"] = check_login(draft.login)
    if draft.password is not None:
        fields["password"] = check_password(bool(draft.password.get_secret_value()))
    complete = len(fields) == 3
    return DraftCheck(valid=complete and all(f.valid for f in fields.values()), fields=fields)


async def _gated_probe(state: AppState, trader_id: str, request: dict[str, Any]) -> ProbeOutcome:
    """One test at a time per trader; at most ``probe_limit_trader`` per window per trader and
    ``probe_limit_login`` failed ones per broker login, whoever tries (no password guessing through us)."""
    opts = state.options
    limits = [
        throttle.Limit(f"probe-trader:{trader_id}", opts.probe_limit_trader, opts.probe_window),
        throttle.Limit(
            f"probe-login:{request['server']}:{request['login']}", opts.probe_limit_login, opts.probe_window
        ),
    ]
    if not state.probes.enter(trader_id):
        raise TooManyAttempts("a connection test is already running; try again when it has finished", 2)
    try:
        await run_in_threadpool(_reserve, state, limits)
        outcome = await run_probe(request, opts.probe_timeout_s, dict(opts.extra_probe_env))
        if outcome.ok:
            await run_in_threadpool(_release, state, [limits[1].key])
        return outcome
    finally:
        state.probes.leave(trader_id)


def _reserve(state: AppState, limits: list[throttle.Limit]) -> None:
    with state.sessions() as db:
        try:
            throttle.reserve(db, limits)
        except throttle.Refused as exc:
            whose = "this trader" if exc.key.startswith("probe-trader:") else "this broker login"
            minutes = exc.retry_after_s // 60 + 1
            raise TooManyAttempts(
                f"too many connection tests for {whose}; try again in {minutes} minutes", exc.retry_after_s
            ) from None


def _release(state: AppState, keys: list[str]) -> None:
    with state.sessions() as db:
        throttle.release(db, keys)


def _server_or_refuse(state: AppState, server: str) -> ServerInfo:
    verdict = check_server(state, server)
    if not verdict.valid:
        raise InvalidInput(verdict.message, field="server", code="unknown_server")
    return state.servers()[server.strip()]


def _refuse(outcome: ProbeOutcome) -> InvalidInput:
    return InvalidInput(outcome.message, field=outcome.field, code=outcome.code)


def _probe_request(info: ServerInfo, login: int) -> dict[str, Any]:
    return {"backend": info.backend, "options": dict(info.options), "server": info.name, "login": login}


def ensure_room(state: AppState, trader_id: str) -> None:
    """Refuse a fourth account before anything is tested or opened."""
    with state.sessions() as db:
        if len(account_repo.accounts_of(db, trader_id)) >= account_repo.MAX_ACCOUNTS_PER_TRADER:
            raise _limit_error()


def _limit_error() -> Conflict:
    limit = account_repo.MAX_ACCOUNTS_PER_TRADER
    return Conflict(
        f"you already have {limit} MT5 accounts, the most one trader can connect; remove one to add another",
        code="account_limit",
    )


async def connect_account(state: AppState, trader_id: str, body: AccountCreate) -> AccountPublic:
    """Validate, test the connection in a child process, and store only what passed."""
    info = _server_or_refuse(state, body.server)
    await run_in_threadpool(ensure_room, state, trader_id)
    request = _probe_request(info, body.login) | {"password": body.password.get_secret_value()}
    outcome = await _gated_probe(state, trader_id, request)
    if not outcome.ok:
        raise _refuse(outcome)
    return await run_in_threadpool(_store, state, trader_id, body, info, outcome)


def _store(
    state: AppState, trader_id: str, body: AccountCreate, info: ServerInfo, outcome: ProbeOutcome
) -> AccountPublic:
    account_id = f"acct-{secrets.token_hex(5)}"
    sealed = state.vault.seal(account_id, body.password.get_secret_value())
    try:
        with state.sessions.begin() as db:
            row = account_repo.add_account(
                db,
                account_id=account_id,
                trader_id=trader_id,
                server=info.name,
                login=body.login,
                sealed=to_columns(sealed),
                label=body.label or f"{info.name} {body.login}",
                backend=info.backend,
                company=str(outcome.account.get("company") or info.company),
                currency=str(outcome.account.get("currency") or ""),
            )
            return AccountPublic.model_validate(row)
    except account_repo.AccountLimitReached:
        raise _limit_error() from None
    except OperationalError:
        # SQLite refuses the second of two racing writers instead of letting both pass the limit.
        raise Unavailable("the database is busy; nothing was stored, please try again", code="busy") from None
    except (account_repo.AccountAlreadyConnected, IntegrityError):
        raise Conflict(
            f"account {body.login} on {info.name} is already connected on this platform",
            field="login",
            code="already_connected",
        ) from None


async def retest_account(state: AppState, account: Mt5Account) -> ProbeOutcome:
    """Test a stored account. This process unwraps only the data key; the child alone sees the password."""
    info = state.servers().get(account.server)
    if info is None:
        return unknown_server(account.server)
    record = sealed_of(account)
    data_key = state.vault.unwrap_data_key(record)
    request = _probe_request(info, account.login) | {
        "account_id": account.id,
        "sealed": record.to_dict(),
        "data_key": base64.b64encode(data_key).decode(),
    }
    outcome = await _gated_probe(state, account.trader_id, request)
    if outcome.ok:

        def mark() -> None:
            with state.sessions.begin() as db:
                row = account_repo.account_by_id(db, account.id)
                if row is not None:
                    account_repo.mark_tested(
                        db,
                        row,
                        str(outcome.account.get("company") or ""),
                        str(outcome.account.get("currency") or ""),
                    )

        await run_in_threadpool(mark)
    return outcome
