"""The order-rate limit on an account's intake: a token bucket, and the executor refusing past it before any
broker call, through the intake's validation refusal."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from mtrobot.connector.audit import AuditTrail
from mtrobot.connector.executor import OrderExecutor
from mtrobot.connector.intake_limit import IntakeLimit, OrderLimit
from mtrobot.connector.journal import Journal
from mtrobot.connector.link import BrokerLink
from mtrobot.connector.options import ConnectorOptions, OptionsHolder
from mtrobot.core.lifecycle import OrderState
from mtrobot.core.orders import OrderRequest
from mtrobot.settings import Settings

from .fake_terminal import FakeBroker, FakeTerminal
from .test_executor import ReadySession

S = OrderState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _request(action: str = "open", **fields: Any) -> OrderRequest:
    body = {"order_id": "o1", "account": "acc1", "symbol": "EURUSD", "order_type": "buy", "volume": 0.1}
    if action == "close":
        body |= {"action": "close", "position": 7}
    return OrderRequest.model_validate(body | fields)


def test_the_bucket_lets_a_burst_through_then_refuses_with_the_limit_named_and_refills_at_its_rate() -> None:
    clock = Clock()
    limit = OrderLimit(per_minute=60, burst=3)
    bucket = IntakeLimit(clock)
    assert [bucket.refuse(_request(), limit) for _ in range(3)] == [None, None, None]
    refusal = bucket.refuse(_request(), limit)
    assert refusal is not None and refusal.retcode == 10024
    assert "60 orders a minute, at most 3 at once" in refusal.message
    assert "did not reach the broker" in refusal.message
    clock.now += 1.0  # one a second
    assert bucket.refuse(_request(), limit) is None
    assert bucket.refuse(_request(), limit) is not None
    clock.now += 3600.0  # never more than the burst saved up
    assert [bucket.refuse(_request(), limit) is None for _ in range(4)] == [True, True, True, False]
    assert bucket.refused == 3


def test_a_backlog_read_at_once_is_judged_by_when_it_was_published_not_when_it_is_read() -> None:
    limit = OrderLimit(per_minute=600, burst=20)
    # 30 orders sent 50 ms apart (20/s for 1.5 s) while the agent was down, read by its successor at once:
    # 20 saved up + 10/s over the 1.5 s they took to send is room for 30.
    backlog = IntakeLimit(Clock())
    assert all(backlog.refuse(_request(), limit, published_at=1000.0 + i * 0.05) is None for i in range(30))
    # The same 30 sent in one instant are a burst past the limit, however they are read.
    flood = IntakeLimit(Clock())
    verdicts = [flood.refuse(_request(), limit, published_at=1000.0) is None for _ in range(30)]
    assert verdicts == [True] * 20 + [False] * 10


def test_closes_are_never_refused_and_take_no_token() -> None:
    bucket = IntakeLimit(Clock())
    limit = OrderLimit(per_minute=60, burst=1)
    assert all(bucket.refuse(_request("close"), limit) is None for _ in range(50))
    assert bucket.refuse(_request(), limit) is None
    assert bucket.refuse(_request(), limit) is not None
    assert bucket.refuse(_request("close"), limit) is None


def test_no_limit_when_the_rate_is_zero() -> None:
    bucket = IntakeLimit(Clock())
    assert all(bucket.refuse(_request(), OrderLimit(per_minute=0, burst=1)) is None for _ in range(1000))


def test_the_limit_comes_from_the_settings_with_a_default(monkeypatch: Any) -> None:
    assert OrderLimit.of(Settings()) == OrderLimit(600.0, 20)
    monkeypatch.setenv("MTROBOT_ORDERS_PER_MIN", "50")
    monkeypatch.setenv("MTROBOT_ORDER_BURST", "5")
    assert OrderLimit.of(Settings()) == OrderLimit(50.0, 5)


class CountingTerminal(FakeTerminal):
    """The fake terminal, counting every call the connector makes to it."""

    def __init__(self, broker: FakeBroker) -> None:
        super().__init__(broker)
        self.calls = 0

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and name not in ("b", "calls"):
            object.__setattr__(self, "calls", object.__getattribute__(self, "calls") + 1)
        return super().__getattribute__(name)


class Rig:
    def __init__(self, tmp_path: Path, limit: OrderLimit) -> None:
        self.broker = FakeBroker()
        self.journal = Journal(tmp_path / "j.sqlite3", "acc1")
        self.terminal = CountingTerminal(self.broker)
        link = BrokerLink(self.terminal, AuditTrail("acc1", tmp_path / "spool", {}), 5.0)
        options = OptionsHolder(ConnectorOptions(order_limit=limit))
        self.executor = OrderExecutor("acc1", self.journal, ReadySession(link), options, rng=random.Random(1))
        self.clock = Clock()
        self.executor.intake_limit = IntakeLimit(self.clock)

    async def submit(self, seq: int, order_id: str) -> Any:
        body = {"order_id": order_id, "account": "acc1", "symbol": "EURUSD", "order_type": "buy",
                "volume": 0.1}  # fmt: skip
        return await self.executor.handle_message(json.dumps(body).encode(), "EURUSD", seq)

    def events(self, kind: str, order_id: str) -> list[dict[str, Any]]:
        found = [json.loads(o.payload) for o in self.journal.outbox(10_000) if o.kind == kind]
        return [e for e in found if e["order_id"] == order_id]


async def test_an_order_past_the_limit_is_rejected_as_a_validation_refusal_before_any_broker_call(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, OrderLimit(per_minute=60, burst=2))
    assert (await rig.submit(1, "a1")).state is S.FILLED
    assert (await rig.submit(2, "a2")).state is S.FILLED
    calls = rig.terminal.calls
    assert calls > 0
    refused = await rig.submit(3, "a3")
    assert refused.state is S.REJECTED
    assert rig.terminal.calls == calls  # not one broker call for it
    assert len(rig.broker.sends) == 2
    [error] = rig.events("error", "a3")
    assert error["category"] == "validation"
    assert error["retcode"] == 10024 and error["retcode_name"] == "TRADE_RETCODE_TOO_MANY_REQUESTS"
    assert "order-rate limit (60 orders a minute, at most 2 at once)" in error["message"]
    # published like every refusal: the agent's heartbeat counts its order updates
    assert [u["state"] for u in rig.events("update", "a3")] == ["received", "rejected"]
    rig.clock.now += 1.0
    assert (await rig.submit(4, "a4")).state is S.FILLED


async def test_a_redelivered_copy_of_an_admitted_order_takes_no_token(tmp_path: Path) -> None:
    rig = Rig(tmp_path, OrderLimit(per_minute=60, burst=1))
    assert (await rig.submit(1, "a1")).state is S.FILLED
    assert (await rig.submit(1, "a1")).state is S.FILLED  # the same message again: nothing new
    assert rig.executor.intake_limit.refused == 0
    assert len(rig.broker.sends) == 1
