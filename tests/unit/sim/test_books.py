"""The simulator's books at scale: deals found by order and position without a scan, the saved snapshot
the same records ``dataclasses.asdict`` gives, and both right after a restore."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

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


async def test_the_books_writer_saves_what_snapshot_describes_save_after_save(tmp_path: Path) -> None:
    """The history is encoded once and kept; every save must still be the whole, current document."""
    broker = SimBroker(clock=VirtualClock(NOON))
    admin = LocalAdmin(broker)
    terms = []
    for n in range(2):
        login = await admin.create_account(
            server="MTRobot-Demo", password=f"Master-pass-{n}", investor_password=f"Inv-pass-{n}"
        )
        term = open_terminal("sim-inprocess", broker=broker)
        assert await term.initialize(login=login, password=f"Master-pass-{n}", server="MTRobot-Demo")
        terms.append(term)
    path = tmp_path / "state.json"
    writer = persistence.BooksWriter(path)
    for round_ in range(3):
        await _trade(terms[round_ % 2], 2 + round_)
        writer.save(broker)
        assert json.loads(path.read_text()) == persistence.snapshot(broker), round_
    restored = SimBroker(clock=VirtualClock(NOON + dt.timedelta(minutes=1)))
    assert persistence.load(restored, path) == 2
    assert persistence.snapshot(restored) == persistence.snapshot(broker)
    # The same writer on the restored broker (new account objects, new lists): encoded afresh.
    writer.save(restored)
    assert json.loads(path.read_text()) == persistence.snapshot(restored)


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
