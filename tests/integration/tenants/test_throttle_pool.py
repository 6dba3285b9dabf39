"""The throttle's process lock and the connection pool are never waited for in opposite orders.

A sign-in holds its session's pooled connection from its first query on; if a thread could wait for a
pooled connection while holding the throttle's lock, a burst of sign-ins larger than the pool would all
hold connections while waiting for the lock, and the lock holder would wait for a connection: every request
of the burst stalls for the pool timeout and ends as a 500 (seen once on PostgreSQL under load)."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from mtrobot.storage.db import make_engine, upgrade_head
from mtrobot.web import security_throttle as throttle

THREADS = 8


def test_a_burst_larger_than_the_pool_never_waits_for_a_connection_under_the_lock(db_url: str) -> None:
    upgrade_head(db_url)
    engine = make_engine(db_url, pool_size=1, max_overflow=0, pool_timeout=10)
    by_email = throttle.Limit("email:burst@example.com", 1000, timedelta(minutes=15))
    by_address = throttle.Limit("ip:203.0.113.9", 1000, timedelta(minutes=15))
    start = threading.Barrier(THREADS)
    failures: list[BaseException] = []

    def sign_in_attempt() -> None:
        start.wait(timeout=30)
        try:
            with Session(engine) as db:  # the sign-in's own order: look, then count
                if not throttle.locked(db, by_address):
                    throttle.reserve(db, [by_email, by_address])
        except PoolTimeout as exc:
            failures.append(exc)

    threads = [threading.Thread(target=sign_in_attempt) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    engine.dispose()
    assert failures == [], f"{len(failures)} of {THREADS} attempts waited out the pool: {failures[0]}"
