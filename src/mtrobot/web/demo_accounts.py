"""Simulated demo accounts for traders of the embedded platform: "open a demo account", as MT5's own
terminal offers, so nobody needs a login from an admin tool.

The simulator opens the account with a random master password that nobody ever sees; the account is then
connected exactly like one the trader typed in (the isolated connection test, then stored sealed), so a
demo account is an ordinary account from here on.
"""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool

from mtrobot.logging import get_logger
from mtrobot.sim.admin import AdminError, SimAdmin
from mtrobot.storage import traders as trader_repo
from mtrobot.web import accounts as connecting
from mtrobot.web.errors import InvalidInput, NotFound, Unavailable
from mtrobot.web.schemas import AccountCreate, AccountPublic, DemoAccountCreate
from mtrobot.web.servers import simbroker_file
from mtrobot.web.state import AppState

log = get_logger(__name__)


def _simulated_server(state: AppState, wanted: str | None) -> str:
    simulated = [s.name for s in state.servers().values() if s.backend.startswith("sim")]
    if not simulated:
        raise NotFound(
            "this platform has no simulated broker, so it cannot open demo accounts; connect an account "
            "of your broker instead",
            code="no_simulator",
        )
    if wanted is None:
        return simulated[0]
    if wanted.strip() not in simulated:
        raise InvalidInput(
            f"'{wanted}' is not a simulated server; choose one of: {', '.join(simulated)}",
            field="server",
            code="unknown_server",
        )
    return wanted.strip()


def _trader_name(state: AppState, trader_id: str) -> str:
    with state.sessions() as db:
        trader = trader_repo.trader_by_id(db, trader_id)
        return (trader.name or trader.email) if trader is not None else "Demo trader"


async def open_demo_account(state: AppState, trader_id: str, body: DemoAccountCreate) -> AccountPublic:
    server = _simulated_server(state, body.server)
    await run_in_threadpool(connecting.ensure_room, state, trader_id)
    password = secrets.token_urlsafe(18)
    try:
        admin = SimAdmin.from_run_file(simbroker_file(state.settings))
        login = await admin.create_account(
            server=server,
            password=password,
            investor_password=secrets.token_urlsafe(18),
            balance=float(body.deposit),
            currency="USD",
            leverage=body.leverage,
            name=(await run_in_threadpool(_trader_name, state, trader_id))[:64],
        )
    except (OSError, TimeoutError, ValueError, KeyError) as exc:
        log.warning("simulator unreachable for a demo account", error=repr(exc))
        raise Unavailable(
            "the simulated broker is not answering; try again in a moment", code="sim"
        ) from None
    except AdminError as exc:
        raise InvalidInput(f"the simulator refused the demo account: {exc}", code="demo_refused") from None
    label = body.label or f"Demo {server} {login}"
    create = AccountCreate.model_validate(
        {"server": server, "login": login, "password": password, "label": label[:100]}
    )
    account = await connecting.connect_account(state, trader_id, create)
    log.info("demo account opened", account=account.id, server=server, login=login)
    return account
