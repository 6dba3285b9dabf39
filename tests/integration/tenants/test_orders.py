"""Orders through the API onto the real bus, and broker events back into order states and the activity log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import nats
import pytest
from fastapi.testclient import TestClient

from mtrobot.bus import subjects
from mtrobot.bus.codec import decode, encode
from mtrobot.bus.server import free_port
from mtrobot.core.events import (
    AccountSnapshot,
    BrokerError,
    ConnectionState,
    ErrorCategory,
    Fill,
    OrderUpdate,
)
from mtrobot.core.lifecycle import OrderState
from mtrobot.core.orders import OrderRequest
from mtrobot.settings import Settings
from tests.integration.tenants.conftest import Trader, make_client, register, seed_account, state_of

API = "/api/v1/accounts"
BUY = {"symbol": "EURUSD", "order_type": "buy", "volume": 0.1}


@pytest.fixture
def bus_settings(data_dir, tmp_path, nats_url: str) -> Settings:
    return Settings(data_dir=data_dir, database_url=f"sqlite:///{tmp_path / 'o.db'}", nats_url=nats_url)


@pytest.fixture
def live(bus_settings: Settings) -> Iterator[tuple[TestClient, Trader, str]]:
    with make_client(bus_settings, listen_to_bus=True) as c:
        trader = register(c)
        yield c, trader, seed_account(state_of(c), trader.id)


def stored_orders(url: str, account: str) -> list[tuple[OrderRequest, str]]:
    """(request, Nats-Msg-Id) of every message in stream ORDERS for ``account``."""

    async def read() -> list[tuple[OrderRequest, str]]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream(timeout=5)
            sub = await js.subscribe(subjects.orders_submitted_filter(account), ordered_consumer=True)
            found = []
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except TimeoutError:
                    return found
                found.append((decode(OrderRequest, msg.data), (msg.headers or {}).get("Nats-Msg-Id", "")))
        finally:
            await nc.close()

    return asyncio.run(read())


def publish(url: str, subject: str, payload: bytes) -> None:
    async def send() -> None:
        nc = await nats.connect(url)
        await nc.publish(subject, payload)
        await nc.flush()
        await nc.close()

    asyncio.run(send())


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_an_order_is_stored_and_published_once_with_its_id_as_message_id(live, nats_url) -> None:
    _c, trader, account = live
    r = trader.send("POST", f"{API}/{account}/orders", json=BUY | {"order_id": "my-order-1"})
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "received"
    again = trader.send("POST", f"{API}/{account}/orders", json=BUY | {"order_id": "my-order-1"})
    assert again.status_code == 202
    published = stored_orders(nats_url, account)
    assert len(published) == 1
    request, msg_id = published[0]
    assert (request.order_id, request.account, request.volume) == ("my-order-1", account, 0.1)
    assert msg_id == f"{account}/my-order-1"
    assert trader.get(f"{API}/{account}/orders/my-order-1").json()["state"] == "received"


def test_reusing_an_order_id_for_a_different_order_is_a_conflict(live) -> None:
    _c, trader, account = live
    assert trader.send("POST", f"{API}/{account}/orders", json=BUY | {"order_id": "x1"}).status_code == 202
    r = trader.send("POST", f"{API}/{account}/orders", json=BUY | {"order_id": "x1", "volume": 0.2})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "order_id"


@pytest.mark.parametrize("price", [{}, {"price": 0.0}], ids=["absent", "zero"])
def test_a_limit_order_without_a_price_is_refused_naming_the_field(live, price) -> None:
    _c, trader, account = live
    r = trader.send("POST", f"{API}/{account}/orders", json=BUY | {"order_type": "buy_limit"} | price)
    assert r.status_code == 422  # 0 is MT5's "no price": not sent for the broker to call invalid
    assert r.json()["detail"] == "Price is required for a buy limit order."
    assert [e["field"] for e in r.json()["errors"]] == ["price"]  # a form marks the price box


def test_without_a_reachable_bus_placing_an_order_fails_clearly_and_stores_nothing(
    tmp_path, data_dir
) -> None:
    dead = f"nats://127.0.0.1:{free_port()}"
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{tmp_path / 'd.db'}", nats_url=dead)
    with make_client(settings, bus_timeout_s=0.5) as c:
        trader = register(c)
        account = seed_account(state_of(c), trader.id)
        r = trader.send("POST", f"{API}/{account}/orders", json=BUY)
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        assert "not sent" in r.json()["detail"]
        assert trader.get(f"{API}/{account}/orders").json() == []


def test_broker_events_update_the_order_and_write_plain_activity_lines(live, nats_url) -> None:
    _c, trader, account = live
    trader.send("POST", f"{API}/{account}/orders", json=BUY | {"order_id": "ev-1"})
    trader.send("POST", f"{API}/{account}/orders", json=BUY | {"order_id": "ev-2"})
    for state in (OrderState.VALIDATED, OrderState.SENT, OrderState.FILLED):
        update = OrderUpdate(order_id="ev-1", account=account, symbol="EURUSD", state=state, ticket=55,
                             filled_volume=0.1 if state is OrderState.FILLED else 0)  # fmt: skip
        publish(nats_url, subjects.broker_order(account, "EURUSD"), encode(update))
    fill = Fill(order_id="ev-1", account=account, symbol="EURUSD", side="buy", ticket=55, deal=901,
                position=55, volume=0.1, price=1.0835, requested_volume=0.1, remaining_volume=0,
                partial=False, retcode=10009, broker_time="2026-01-05T10:00:00Z", latency_ms=3.0)  # fmt: skip
    publish(nats_url, subjects.broker_fill(account, "EURUSD"), encode(fill))
    error = BrokerError(order_id="ev-2", account=account, symbol="EURUSD", retcode=10019,
                        retcode_name="TRADE_RETCODE_NO_MONEY", category=ErrorCategory.VALIDATION,
                        message="There is not enough money on the account for this order.")  # fmt: skip
    publish(nats_url, subjects.broker_error(account, "EURUSD"), encode(error))

    def lines() -> list[str]:
        return [a["message"] for a in trader.get(f"{API}/{account}/activity").json()]

    wait_for(lambda: any("not enough money" in line for line in lines()), "the rejection line")
    wait_for(
        lambda: any("Filled: buy 0.1 lots EURUSD at 1.0835" in line for line in lines()), "the fill line"
    )
    wait_for(
        lambda: trader.get(f"{API}/{account}/orders/ev-1").json()["state"] == "filled", "order ev-1 filled"
    )
    order = trader.get(f"{API}/{account}/orders/ev-1").json()
    assert (order["ticket"], order["filled_volume"]) == (55, 0.1)
    assert any(line == "Order ev-1 (EURUSD) sent to the broker." for line in lines())


def test_cancelling_waits_for_the_broker_ticket_then_sends_a_cancel(live, nats_url) -> None:
    _c, trader, account = live
    pending = BUY | {"order_type": "buy_limit", "price": 1.01, "order_id": "lim-1"}
    assert trader.send("POST", f"{API}/{account}/orders", json=pending).status_code == 202
    early = trader.send("DELETE", f"{API}/{account}/orders/lim-1")
    assert early.status_code == 409 and early.json()["code"] == "order_not_accepted"
    for state in (OrderState.VALIDATED, OrderState.SENT, OrderState.ACCEPTED):
        update = OrderUpdate(order_id="lim-1", account=account, symbol="EURUSD", state=state, ticket=321)
        publish(nats_url, subjects.broker_order(account, "EURUSD"), encode(update))
    wait_for(lambda: trader.get(f"{API}/{account}/orders/lim-1").json()["ticket"] == 321, "the ticket")
    r = trader.send("DELETE", f"{API}/{account}/orders/lim-1", params={"order_ref": "lim-1-cancel"})
    assert r.status_code == 202 and r.json()["parent_order_id"] == "lim-1"
    cancel = [req for req, _ in stored_orders(nats_url, account) if req.order_id == "lim-1-cancel"]
    assert cancel and (cancel[0].action.value, cancel[0].ticket) == ("cancel", 321)


def test_a_robots_pending_order_is_cancelled_by_the_order_id_its_snapshot_names(live, nats_url) -> None:
    _c, trader, account = live
    assert trader.send("DELETE", f"{API}/{account}/orders/rb-9").json()["code"] == "order_not_found"
    order = {"ticket": 812, "symbol": "GBPUSD", "type": "sell_stop", "volume": 0.1, "order_id": "rb-9"}
    snapshot = AccountSnapshot(seq=3, account=account, connection=ConnectionState.CONNECTED, orders=[order])
    put_snapshot(nats_url, snapshot)
    r = trader.send("DELETE", f"{API}/{account}/orders/rb-9", params={"order_ref": "rb-9-cancel"})
    assert r.status_code == 202, r.text
    sent = {req.order_id: req for req, _ in stored_orders(nats_url, account)}["rb-9-cancel"]
    assert (sent.action.value, sent.symbol, sent.ticket) == ("cancel", "GBPUSD", 812)


def test_any_pending_order_in_the_snapshot_is_cancelled_by_its_ticket(live, nats_url) -> None:
    _c, trader, account = live
    long_id = "a-long-order-id-of-22ch"  # its comment tag is a hash: the snapshot cannot name it
    pending = BUY | {"order_type": "sell_stop", "price": 1.01, "order_id": long_id}
    assert trader.send("POST", f"{API}/{account}/orders", json=pending).status_code == 202
    update = OrderUpdate(order_id=long_id, account=account, symbol="EURUSD", state=OrderState.ACCEPTED,
                         ticket=944)  # fmt: skip
    publish(nats_url, subjects.broker_order(account, "EURUSD"), encode(update))
    wait_for(lambda: trader.get(f"{API}/{account}/orders/{long_id}").json()["ticket"] == 944, "the ticket")
    outside = {"ticket": 945, "symbol": "GBPUSD", "type": "buy_limit", "volume": 0.1, "order_id": ""}
    hashed = {"ticket": 944, "symbol": "EURUSD", "type": "sell_stop", "volume": 0.1, "order_id": ""}
    put_snapshot(nats_url, AccountSnapshot(seq=4, account=account, connection=ConnectionState.CONNECTED,
                                           orders=[hashed, outside]))  # fmt: skip
    unknown = trader.send("DELETE", f"{API}/{account}/pending-orders/946")
    assert unknown.status_code == 404 and unknown.json()["code"] == "order_not_found"

    r = trader.send("DELETE", f"{API}/{account}/pending-orders/944", params={"order_ref": "c-944"})
    assert r.status_code == 202 and r.json()["parent_order_id"] == long_id, r.text
    r = trader.send("DELETE", f"{API}/{account}/pending-orders/945", params={"order_ref": "c-945"})
    assert r.status_code == 202 and r.json()["parent_order_id"] is None, r.text
    sent = {req.order_id: req for req, _ in stored_orders(nats_url, account)}
    for ref, symbol, ticket in (("c-944", "EURUSD", 944), ("c-945", "GBPUSD", 945)):
        assert (sent[ref].action.value, sent[ref].symbol, sent[ref].ticket) == ("cancel", symbol, ticket)


def test_a_snapshot_stored_under_the_key_of_another_account_is_not_read(live, nats_url) -> None:
    _c, trader, account = live
    order = {"ticket": 77, "symbol": "EURUSD", "type": "buy_limit", "volume": 0.1, "order_id": "x-77"}
    other = AccountSnapshot(seq=9, account="someone-else", connection=ConnectionState.CONNECTED,
                            positions=[{"ticket": 78, "symbol": "EURUSD"}], orders=[order])  # fmt: skip
    put_snapshot(nats_url, other, key=account)
    view = trader.get(f"{API}/{account}/positions").json()
    assert (view["as_of"], view["positions"], view["orders"]) == (None, [], [])
    assert trader.send("DELETE", f"{API}/{account}/pending-orders/77").status_code == 404
    assert trader.send("DELETE", f"{API}/{account}/orders/x-77").status_code == 404
    closed = trader.send("POST", f"{API}/{account}/positions/78/close", json={})
    assert closed.status_code == 404 and closed.json()["code"] == "position_not_found"
    put_snapshot(nats_url, other.model_copy(update={"account": account}))  # the same, under its own key
    assert [o["ticket"] for o in trader.get(f"{API}/{account}/positions").json()["orders"]] == [77]


def put_snapshot(url: str, snapshot: AccountSnapshot, key: str | None = None) -> None:
    async def put() -> None:
        nc = await nats.connect(url)
        kv = await nc.jetstream().key_value(subjects.SNAPSHOTS_BUCKET)
        await kv.put(key or snapshot.account, encode(snapshot))
        await nc.close()

    asyncio.run(put())


def test_positions_and_agent_status_come_from_the_latest_snapshot_and_a_close_finds_the_symbol(
    live, nats_url
) -> None:
    _c, trader, account = live
    assert trader.get(f"{API}/{account}/agent").json()["connection"] == "unknown"
    position = {"ticket": 4242, "symbol": "XAUUSD", "type": "buy", "volume": 0.2, "price_open": 2300.5}
    snapshot = AccountSnapshot(seq=7, account=account, connection=ConnectionState.CONNECTED, currency="USD",
                               balance=10_000, equity=10_050, positions=[position])  # fmt: skip
    put_snapshot(nats_url, snapshot)
    positions = trader.get(f"{API}/{account}/positions").json()
    assert positions["positions"] == [position]
    agent = trader.get(f"{API}/{account}/agent").json()
    assert (agent["connection"], agent["seq"], agent["equity"]) == ("connected", 7, 10_050)
    r = trader.send(
        "POST", f"{API}/{account}/positions/4242/close", json={"volume": 0.1, "order_id": "close-1"}
    )
    assert r.status_code == 202, r.text
    sent = {req.order_id: req for req, _ in stored_orders(nats_url, account)}["close-1"]
    assert (sent.action.value, sent.symbol, sent.position, sent.volume) == ("close", "XAUUSD", 4242, 0.1)
    missing = trader.send("POST", f"{API}/{account}/positions/999/close", json={})
    assert missing.status_code == 404 and missing.json()["code"] == "position_not_found"


def test_a_reconnect_seen_in_the_snapshots_becomes_an_activity_line(live, nats_url) -> None:
    _c, trader, account = live
    for seq, state in enumerate(
        (ConnectionState.CONNECTED, ConnectionState.BACKOFF, ConnectionState.CONNECTED)
    ):
        snap = AccountSnapshot(seq=seq, account=account, connection=state)
        publish(nats_url, subjects.snapshot(account), encode(snap))

    def kinds() -> list[str]:
        return [a["kind"] for a in trader.get(f"{API}/{account}/activity").json()]

    wait_for(lambda: kinds()[:2] == ["reconnect", "reconnect"], "the lost and regained connection lines")
    messages = [a["message"] for a in trader.get(f"{API}/{account}/activity").json()]
    assert messages[:2] == ["Connected to the broker.", "Lost the connection to the broker; reconnecting."]


def test_the_same_order_posted_twice_at_once_is_stored_and_published_once(live, nats_url) -> None:
    from concurrent.futures import ThreadPoolExecutor

    _c, trader, account = live
    body = BUY | {"order_id": "twin-1"}
    with ThreadPoolExecutor(4) as pool:
        url = f"{API}/{account}/orders"
        answers = list(pool.map(lambda _: trader.send("POST", url, json=body), range(4)))
    assert [a.status_code for a in answers] == [202] * 4, [a.text for a in answers]
    assert [req.order_id for req, _ in stored_orders(nats_url, account)] == ["twin-1"]


def test_each_reconciliation_difference_becomes_a_plain_activity_line(live, nats_url) -> None:
    from mtrobot.connector.reconcile import Difference, ReconciliationReport

    _c, trader, account = live
    report = ReconciliationReport(account=account, trigger="reconnect", positions_checked=2, orders_checked=0,
                                  differences=[
                                      Difference(kind="outside_platform", symbol="EURUSD", position=77),
                                      Difference(kind="volume_mismatch", symbol="XAUUSD", position=78,
                                                 platform_volume=0.2, broker_volume=0.1),
                                  ])  # fmt: skip
    publish(nats_url, subjects.reconciliation_report(account), report.model_dump_json().encode())

    def lines() -> list[str]:
        return [
            a["message"]
            for a in trader.get(f"{API}/{account}/activity").json()
            if a["kind"] == "reconciliation"
        ]

    wait_for(lambda: len(lines()) == 2, "two reconciliation lines")
    assert "position 77 (EURUSD) was opened outside the platform" in lines()[1]
    assert "position 78 (XAUUSD) is 0.1 lots at the broker, 0.2 here" in lines()[0]


def test_the_web_follows_the_connector_state_ignores_echoes_and_counts_each_deal_once(live, nats_url) -> None:
    """The connector's own ``received`` (and a re-published burst after a reconnect) is an echo, never an
    error; two partial fills give the volume-weighted price; the same deal twice counts once."""
    _c, trader, account = live
    trader.send("POST", f"{API}/{account}/orders", json=BUY | {"order_id": "tr-1"})

    def update(state: OrderState, filled: float = 0.0) -> None:
        body = OrderUpdate(order_id="tr-1", account=account, symbol="EURUSD", state=state, ticket=77,
                           filled_volume=filled)  # fmt: skip
        publish(nats_url, subjects.broker_order(account, "EURUSD"), encode(body))

    def fill(deal: int, volume: float, price: float) -> None:
        body = Fill(order_id="tr-1", account=account, symbol="EURUSD", side="buy", ticket=77, deal=deal,
                    position=77, volume=volume, price=price, requested_volume=0.1,
                    remaining_volume=round(0.1 - volume, 2), partial=volume < 0.1, retcode=10010,
                    broker_time="2026-01-05T10:00:00Z", latency_ms=2.0)  # fmt: skip
        publish(nats_url, subjects.broker_fill(account, "EURUSD"), encode(body))

    for state in (OrderState.RECEIVED, OrderState.VALIDATED, OrderState.SENT):
        update(state)
    update(OrderState.PARTIALLY_FILLED, 0.04)
    fill(1001, 0.04, 1.1000)
    update(OrderState.FILLED, 0.1)
    fill(1002, 0.06, 1.1010)
    # A re-published burst (the connector replays its last seconds after a NATS reconnect):
    update(OrderState.SENT)
    fill(1001, 0.04, 1.1000)
    update(OrderState.FILLED, 0.1)

    def order() -> dict:
        return trader.get(f"{API}/{account}/orders/tr-1").json()

    wait_for(lambda: order()["avg_price"] is not None and order()["state"] == "filled", "the filled order")
    marker = BUY | {"order_id": "tr-2"}  # events are applied in order: once tr-2's line is there, all are
    trader.send("POST", f"{API}/{account}/orders", json=marker)
    sent = OrderUpdate(order_id="tr-2", account=account, symbol="EURUSD", state=OrderState.SENT)
    publish(nats_url, subjects.broker_order(account, "EURUSD"), encode(sent))
    lines = lambda: [a["message"] for a in trader.get(f"{API}/{account}/activity").json()]  # noqa: E731
    wait_for(lambda: "Order tr-2 (EURUSD) sent to the broker." in lines(), "the marker line")
    final = order()
    assert (final["state"], final["filled_volume"]) == ("filled", 0.1)
    assert abs(final["avg_price"] - (0.04 * 1.1000 + 0.06 * 1.1010) / 0.1) < 1e-9
    fills = [line for line in lines() if "order tr-1, deal" in line]
    assert len(fills) == 2 and sum("sent to the broker" in line and "tr-1" in line for line in lines()) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("volume", True), ("volume", "0.01"), ("price", "1.1"), ("deviation", True), ("deviation", 5.5)],
)
def test_the_order_api_coerces_nothing_and_names_the_field(live, nats_url, field, value) -> None:
    _c, trader, account = live
    body = BUY | {"order_type": "buy_limit", "price": 1.0} | {field: value}
    r = trader.send("POST", f"{API}/{account}/orders", json=body)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert stored_orders(nats_url, account) == []
