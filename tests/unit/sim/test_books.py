"""The simulator's books at scale: deals found by order and position without a scan, the saved snapshot
the same records ``dataclasses.asdict`` gives, and both right after a restore; the history appended to its
file save after save, and what a save cut short, a torn line, a lost history file and a version 1 file
restore."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from mtrobot.broker import constants as mt5
from mtrobot.broker.backends import open_terminal
from mtrobot.sim import persistence
from mtrobot.sim.admin import LocalAdmin
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.clock import VirtualClock
from mtrobot.sim.state import Account

NOON = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)


async def _traded_broker(trades: int) -> tuple[SimBroker, Account, list[Any]]:
    broker = SimBroker(clock=VirtualClock(NOON))
    login = await LocalAdmin(broker).create_account(
        server="MTRobot-Demo", password="Master-pass-1", investor_password="Inv-pass-1"
    )
    term = open_terminal("sim-inprocess", broker=broker)
    assert await term.initialize(login=login, password="Master-pass-1", server="MTRobot-Demo")
    results = await _trade(term, trades)
    account = next(a for server in broker.servers.values() for a in server.accounts.values())
    return broker, account, results


async def _trade(term: Any, trades: int) -> list[Any]:
    results = []
    for n in range(trades):
        tick = await term.symbol_info_tick("EURUSD")
        assert tick is not None
        buy = n % 3 != 2  # mostly opening, now and then closing: positions with one deal and with two
        request: dict[str, Any] = {
            "action": mt5.TRADE_ACTION_DEAL,
            "symbol": "EURUSD",
            "volume": 0.01,
            "type": mt5.ORDER_TYPE_BUY if buy else mt5.ORDER_TYPE_SELL,
            "price": tick.ask if buy else tick.bid,
            "deviation": 100,
        }
        if not buy:
            positions = await term.positions_get()
            assert positions
            request["position"] = positions[0].ticket
        result = await term.order_send(request)
        assert result is not None and result.retcode == mt5.TRADE_RETCODE_DONE, result
        results.append(result)
    return results


def _scan_by_order(account: Account, ticket: int) -> list[Any]:
    return [d for d in account.deals if d.order == ticket]


def _scan_by_position(account: Account, identifier: int) -> list[Any]:
    return [d for d in account.deals if d.position_id == identifier]


async def test_deals_by_order_and_position_are_the_scan_s_answer_as_the_history_grows() -> None:
    broker, account, results = await _traded_broker(12)
    for result in results:
        assert account.deals_of_order(result.order) == _scan_by_order(account, result.order)
        assert len(account.deals_of_order(result.order)) == 1
    identifiers = {d.position_id for d in account.deals}
    assert len(identifiers) > 2
    for identifier in identifiers:
        assert account.deals_of_position(identifier) == _scan_by_position(account, identifier)
    assert account.deals_of_order(987_654_321) == [] and account.deals_of_position(987_654_321) == []
    # A deal appended after the index was built is found: the index catches up with the history.
    server = next(iter(broker.servers.values()))
    late = server.balance_operation(account, 1.0, "late deposit")
    assert account.deals_of_order(late.order)[-1] is late is account.deals[-1]
    answer = account.deals_of_order(results[0].order)
    answer.clear()  # a caller's copy: the index is not touched
    assert account.deals_of_order(results[0].order) == _scan_by_order(account, results[0].order)


async def test_saved_records_are_asdict_s_and_a_restored_history_is_indexed_afresh(tmp_path: Any) -> None:
    broker, account, results = await _traded_broker(6)
    saved = persistence.snapshot(broker)
    (raw,) = [a for server in saved["servers"].values() for a in server["accounts"]]
    assert raw["deals"] == [dataclasses.asdict(d) for d in account.deals]
    assert raw["history_orders"] == [dataclasses.asdict(o) for o in account.history_orders]
    assert raw["positions"] == [dataclasses.asdict(p) for p in account.positions.values()]
    assert "_deal_index" not in raw

    account.deals_of_order(results[0].order)  # the index built on the first broker's list
    second = SimBroker(clock=VirtualClock(NOON + dt.timedelta(minutes=1)))
    assert persistence.restore(second, saved) == 1
    again = next(a for server in second.servers.values() for a in server.accounts.values())
    for result in results:
        assert [d.ticket for d in again.deals_of_order(result.order)] == [
            d.ticket for d in _scan_by_order(account, result.order)
        ]
    # The same account object given a new history (as a restore does) answers from the new one.
    account.deals = account.deals[:1]
    assert account.deals_of_order(results[-1].order) == _scan_by_order(account, results[-1].order) == []


async def _two_accounts() -> tuple[SimBroker, list[Any], list[int]]:
    broker = SimBroker(clock=VirtualClock(NOON))
    admin = LocalAdmin(broker)
    terms, logins = [], []
    for n in range(2):
        login = await admin.create_account(
            server="MTRobot-Demo", password=f"Master-pass-{n}", investor_password=f"Inv-pass-{n}"
        )
        term = open_terminal("sim-inprocess", broker=broker)
        assert await term.initialize(login=login, password=f"Master-pass-{n}", server="MTRobot-Demo")
        terms.append(term)
        logins.append(login)
    return broker, terms, logins


def _reloaded(path: Path) -> dict[str, Any]:
    """The books as a fresh process would restore them from the files."""
    restored = SimBroker(clock=VirtualClock(NOON + dt.timedelta(minutes=1)))
    persistence.load(restored, path)
    return persistence.snapshot(restored)


async def test_the_books_writer_appends_the_history_and_restores_what_snapshot_describes(
    tmp_path: Path,
) -> None:
    """Each save appends only what the history gained; the files always restore the whole, current books."""
    broker, terms, logins = await _two_accounts()
    path = tmp_path / "state.json"
    writer = persistence.BooksWriter(path)
    before = b""
    for round_ in range(3):
        await _trade(terms[round_ % 2], 2 + round_)
        writer.save(broker)
        history = persistence.history_path(path).read_bytes()
        assert history.startswith(before) and len(history) > len(before), round_  # appended, never rewritten
        before = history
        head = json.loads(path.read_text())
        assert head["version"] == persistence.FORMAT_VERSION
        assert all(
            "deals" not in a and "history_orders" not in a
            for a in head["servers"]["MTRobot-Demo"]["accounts"]
        )
        assert _reloaded(path) == persistence.snapshot(broker), round_
    writer.save(broker)  # nothing new: nothing appended
    assert persistence.history_path(path).read_bytes() == before
    assert stat.S_IMODE(persistence.history_path(path).stat().st_mode) == 0o600

    # A process restarted on these files appends to them as they are.
    second = SimBroker(clock=VirtualClock(NOON + dt.timedelta(minutes=1)))
    again = persistence.BooksWriter(path)
    assert again.load(second) == 2
    term = open_terminal("sim-inprocess", broker=second)
    assert await term.initialize(login=logins[0], password="Master-pass-0", server="MTRobot-Demo")
    await _trade(term, 2)
    again.save(second)
    assert persistence.history_path(path).read_bytes().startswith(before)
    assert _reloaded(path) == persistence.snapshot(second)


def _records(broker: SimBroker) -> int:
    return sum(
        len(a.deals) + len(a.history_orders)
        for server in broker.servers.values()
        for a in server.accounts.values()
    )


async def test_a_writer_given_other_books_writes_their_history_afresh(tmp_path: Path) -> None:
    first, terms, _ = await _two_accounts()
    await _trade(terms[0], 3)
    other, others, _ = await _two_accounts()  # the same logins, another history (a restore gives new lists)
    await _trade(others[0], 1)
    path = tmp_path / "state.json"
    writer = persistence.BooksWriter(path)
    writer.save(first)
    writer.save(other)
    assert _reloaded(path) == persistence.snapshot(other) != persistence.snapshot(first)
    assert len(persistence.history_path(path).read_text().splitlines()) == _records(other)


async def test_a_save_cut_between_the_history_and_the_head_restores_the_last_whole_save(
    tmp_path: Path, monkeypatch: Any
) -> None:
    broker, terms, _ = await _two_accounts()
    path = tmp_path / "state.json"
    writer = persistence.BooksWriter(path)
    await _trade(terms[0], 3)
    writer.save(broker)
    whole = persistence.snapshot(broker)

    await _trade(terms[1], 2)
    real = persistence.write_atomically

    def head_fails(target: Path, data: Any, **kwargs: Any) -> None:
        if target == path:
            raise OSError("disk full")
        real(target, data, **kwargs)

    monkeypatch.setattr(persistence, "write_atomically", head_fails)
    with pytest.raises(OSError, match="disk full"):
        writer.save(broker)  # the history got its lines, the head never came
    monkeypatch.setattr(persistence, "write_atomically", real)
    assert _reloaded(path) == whole  # the lines no head counts are left out

    # The same process saves again: what the failed save appended is written over, not doubled.
    await _trade(terms[0], 1)
    writer.save(broker)
    assert _reloaded(path) == persistence.snapshot(broker)
    assert len(persistence.history_path(path).read_text().splitlines()) == _records(broker)

    # A process that finds lines no head counts (a crash between the two) writes the history afresh.
    await _trade(terms[1], 1)
    monkeypatch.setattr(persistence, "write_atomically", head_fails)
    with pytest.raises(OSError):
        writer.save(broker)
    monkeypatch.setattr(persistence, "write_atomically", real)
    counted = persistence.snapshot(broker)
    restarted = SimBroker(clock=VirtualClock(NOON + dt.timedelta(minutes=1)))
    fresh = persistence.BooksWriter(path)
    fresh.load(restarted)
    fresh.save(restarted)
    lines = persistence.history_path(path).read_text().splitlines()
    expected = sum(
        len(a["deals"]) + len(a["history_orders"])
        for a in persistence.snapshot(restarted)["servers"]["MTRobot-Demo"]["accounts"]
    )
    assert (
        len(lines)
        == expected
        < sum(
            len(a["deals"]) + len(a["history_orders"]) for a in counted["servers"]["MTRobot-Demo"]["accounts"]
        )
    )
    assert _reloaded(path) == persistence.snapshot(restarted)


async def test_a_torn_last_line_a_lost_history_and_a_version_1_file_are_read(tmp_path: Path) -> None:
    broker, terms, _ = await _two_accounts()
    await _trade(terms[0], 3)
    path = tmp_path / "state.json"
    persistence.save(broker, path)
    history = persistence.history_path(path)
    with history.open("a") as handle:
        handle.write('{"server": "MTRobot-Demo", "login": 1, "de')  # a crash mid-append
    restarted = SimBroker(clock=VirtualClock(NOON + dt.timedelta(minutes=1)))
    writer = persistence.BooksWriter(path)
    assert writer.load(restarted) == 2
    assert persistence.snapshot(restarted) == persistence.snapshot(broker)
    writer.save(restarted)  # written afresh: the torn line is gone
    assert all(json.loads(line) for line in history.read_text().splitlines())
    assert _reloaded(path) == persistence.snapshot(broker)

    history.unlink()  # lost: the accounts come back with the history that is left (none), logged
    lost = SimBroker(clock=VirtualClock(NOON + dt.timedelta(minutes=1)))
    assert persistence.load(lost, path) == 2
    books = persistence.snapshot(lost)["servers"]["MTRobot-Demo"]["accounts"]
    assert [a["balance"] for a in books] == [
        a["balance"] for a in persistence.snapshot(broker)["servers"]["MTRobot-Demo"]["accounts"]
    ]
    assert all(not a["deals"] for a in books)

    path.write_text(json.dumps(persistence.snapshot(broker)))  # version 1: the history inline
    history.unlink(missing_ok=True)
    old = SimBroker(clock=VirtualClock(NOON + dt.timedelta(minutes=1)))
    writer = persistence.BooksWriter(path)
    assert writer.load(old) == 2 and persistence.snapshot(old) == persistence.snapshot(broker)
    writer.save(old)  # the first save moves the history into the history file
    assert json.loads(path.read_text())["version"] == persistence.FORMAT_VERSION and history.exists()
    assert _reloaded(path) == persistence.snapshot(broker)


async def test_an_ended_order_enters_the_history_as_a_copy() -> None:
    broker, account, _ = await _traded_broker(1)
    server = next(iter(broker.servers.values()))
    live = dataclasses.replace(account.history_orders[-1], ticket=server.next_order_ticket(), state=0)
    account.orders[live.ticket] = live
    server.archive(account, live, mt5.ORDER_STATE_CANCELED)
    ended = account.history_orders[-1]
    assert ended == live and ended is not live
    live.comment = "changed later"
    assert ended.comment != "changed later"
