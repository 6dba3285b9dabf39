"""The order path against a fake terminal: retries, ambiguity, lookup, duplicates, resumption."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from mtrobot.connector.audit import AuditTrail
from mtrobot.connector.backoff import Backoff
from mtrobot.connector.executor import OrderExecutor
from mtrobot.connector.journal import Journal
from mtrobot.connector.link import BrokerLink
from mtrobot.connector.options import ConnectorOptions, OptionsHolder
from mtrobot.core.ids import comment_tag
from mtrobot.core.lifecycle import OrderState

from .fake_terminal import FakeBroker, FakeTerminal

S = OrderState


class ReadySession:
    def __init__(self, link: BrokerLink) -> None:
        self.link = link
        self.failures: list[tuple[int, str]] = []

    async def wait_ready(self, timeout: float) -> bool:
        return True

    def notice_failure(self, error: tuple[int, str]) -> None:
        self.failures.append(error)


class Rig:
    def __init__(self, tmp_path: Path, **opts: Any) -> None:
        self.broker = FakeBroker()
        self.journal = Journal(tmp_path / "j.sqlite3", "acc1")
        self.audit = AuditTrail("acc1", tmp_path / "spool", {})
        self.link = BrokerLink(FakeTerminal(self.broker), self.audit, 5.0)
        options = ConnectorOptions(retry_backoff=Backoff(0.001, 0.002), **opts)
        self.executor = OrderExecutor(
            "acc1", self.journal, ReadySession(self.link), OptionsHolder(options), rng=random.Random(1)
        )

    async def submit(self, seq: int, **fields: Any) -> Any:
        body = {"order_id": "o1", "account": "acc1", "symbol": "EURUSD", "order_type": "buy", "volume": 0.1}
        return await self.executor.handle_message(json.dumps(body | fields).encode(), "EURUSD", seq)

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(o.payload) for o in self.journal.outbox(10_000) if o.kind == kind]

    def states(self) -> list[str]:
        return [u["state"] for u in self.events("update")]


async def test_a_market_order_fills_once_with_one_fill_per_deal_and_every_state_published(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    entry = await rig.submit(1)
    assert entry.state is S.FILLED
    assert rig.states() == ["received", "validated", "sent", "filled"]
    [fill] = rig.events("fill")
    assert fill["volume"] == 0.1 and fill["order_id"] == "o1" and not fill["partial"]
    assert rig.broker.sends[0]["comment"] == comment_tag("acc1", "o1")


async def test_a_requote_is_retried_with_a_fresh_price_and_fills(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.broker.requote_next = 2
    entry = await rig.submit(1)
    assert entry.state is S.FILLED and entry.attempts == 3
    assert rig.broker.executed(comment_tag("acc1", "o1")) == 1


async def test_a_requote_storm_gives_up_after_max_retries_with_a_plain_retriable_error(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, max_retries=3)
    rig.broker.requote_next = 100
    entry = await rig.submit(1)
    assert entry.state is S.REJECTED and len(rig.broker.sends) == 4
    [err] = rig.events("error")
    assert err["category"] == "retriable" and err["retcode_name"] == "TRADE_RETCODE_REQUOTE"
    assert "Gave up after 4 attempts" in err["message"] and err["attempts"] == 4


async def test_a_lost_reply_is_looked_up_and_never_sent_again(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.broker.lose_reply_next = 1
    entry = await rig.submit(1)
    assert entry.state is S.FILLED and len(rig.broker.sends) == 1
    assert rig.states()[-1] == "filled" and len(rig.events("fill")) == 1


async def test_no_connection_before_sending_is_retried_because_nothing_was_sent(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.broker.disconnect_next = 1
    entry = await rig.submit(1)
    assert entry.state is S.FILLED and len(rig.broker.sends) == 2
    assert rig.broker.executed(comment_tag("acc1", "o1")) == 1


async def test_a_second_message_with_the_same_order_id_is_a_duplicate_and_reaches_no_broker(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    await rig.submit(1)
    await rig.submit(2)
    assert len(rig.broker.sends) == 1 and rig.states()[-1] == "duplicate"


async def test_a_redelivered_message_of_a_finished_order_does_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    await rig.submit(1)
    before = len(rig.journal.outbox(10_000))
    await rig.submit(1)
    assert len(rig.broker.sends) == 1 and len(rig.journal.outbox(10_000)) == before


async def test_an_order_crashed_after_its_intent_is_looked_up_not_resent(tmp_path: Path) -> None:
    rig = Rig(tmp_path, unknown_settle_s=0.0)
    admitted = rig.journal.admit(
        "o9",
        "EURUSD",
        {"order_id": "o9", "account": "acc1", "symbol": "EURUSD", "order_type": "buy", "volume": 0.1},
        1,
        "m-o9",
        77,
    )
    rig.journal.transition("o9", S.VALIDATED)
    entry = rig.journal.begin_attempt("o9")  # ... and the process died here
    assert admitted.new
    entry = await rig.executor.execute(entry)
    assert entry.state is S.UNKNOWN and rig.broker.sends == []
    entry = await rig.executor.settle_unknown(entry)
    assert entry.state is S.REJECTED and rig.broker.sends == []
    assert "not executed" in rig.events("error")[-1]["message"]


async def test_validation_refusals_are_category_validation_and_never_sent(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    entry = await rig.submit(1, volume=0.001)
    assert entry.state is S.REJECTED and rig.broker.sends == []
    [err] = rig.events("error")
    assert err["category"] == "validation" and err["retcode"] == 10014


@pytest.mark.parametrize("kind", ["buy_limit", "sell_limit"])
async def test_a_pending_order_is_accepted_then_cancelled_by_a_cancel_order(
    tmp_path: Path, kind: str
) -> None:
    rig = Rig(tmp_path)
    price = 1.09 if kind == "buy_limit" else 1.11
    placed = await rig.submit(1, order_type=kind, price=price)
    assert placed.state is S.ACCEPTED and placed.ticket
    body = {
        "order_id": "c1",
        "account": "acc1",
        "symbol": "EURUSD",
        "action": "cancel",
        "ticket": placed.ticket,
    }
    cancel = await rig.executor.handle_message(json.dumps(body).encode(), "EURUSD", 2)
    assert cancel.state is S.CANCELLED and rig.broker.orders == {}


async def test_a_partial_close_fills_the_requested_volume(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    opened = await rig.submit(1, volume=0.2)
    position = opened.ticket
    body = {"account": "acc1", "symbol": "EURUSD", "action": "close", "position": position}
    part = await rig.executor.handle_message(
        json.dumps(body | {"order_id": "p1", "volume": 0.1}).encode(), "EURUSD", 2
    )
    assert part.state is S.FILLED
