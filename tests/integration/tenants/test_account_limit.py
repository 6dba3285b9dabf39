"""The three-account limit holds when connects race (PostgreSQL locks the trader row, SQLite refuses the
second writer); it is never exceeded."""

from __future__ import annotations

import secrets
import threading

from sqlalchemy.exc import OperationalError

from mtrobot.storage import accounts as account_repo
from mtrobot.storage import traders as trader_repo
from mtrobot.storage.accounts import SealedColumns
from mtrobot.storage.db import make_engine, session_factory, upgrade_head

SEALED = SealedColumns("k", b"w", b"n", b"c")


def add(db) -> None:
    account_repo.add_account(
        db, account_id=f"acct-{secrets.token_hex(4)}", trader_id="trd_race", server="S",
        login=secrets.randbelow(10**9) + 1, sealed=SEALED,
    )  # fmt: skip


def test_racing_connects_never_exceed_three_accounts(db_url: str) -> None:
    upgrade_head(db_url)
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    with sessions.begin() as db:
        trader_repo.add_trader(db, "trd_race", "race@example.com", "", "x")
        for _ in range(2):
            add(db)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def connect() -> None:
        barrier.wait(5)
        try:
            with sessions.begin() as db:
                add(db)
            outcomes.append("stored")
        except account_repo.AccountLimitReached:
            outcomes.append("limit")
        except OperationalError:
            outcomes.append("busy")

    threads = [threading.Thread(target=connect) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    with sessions() as db:
        count = len(account_repo.accounts_of(db, "trd_race"))
    engine.dispose()
    assert outcomes.count("stored") == 1 and len(outcomes) == 4, outcomes
    assert count == 3
