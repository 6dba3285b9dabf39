"""``/api/v1/stream`` on a real server and bus: latest state at once, then news; only the caller's."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from mtrobot.bus import subjects
from mtrobot.bus.codec import encode
from mtrobot.core.events import AccountSnapshot, ConnectionState
from tests.integration.tenants.conftest import seed_account
from tests.integration.web.conftest import LiveWeb, WebTrader


def ws_url(web: LiveWeb) -> str:
    return web.url.replace("http://", "ws://") + "/api/v1/stream"


def open_as(web: LiveWeb, trader: WebTrader, **kw: Any) -> Any:
    headers = {"Cookie": trader.cookie_header()}
    return connect(ws_url(web), additional_headers=headers, origin=kw.pop("origin", web.url), **kw)


def snap(account: str, seq: int, equity: float = 1000.0) -> AccountSnapshot:
    return AccountSnapshot(seq=seq, account=account, connection=ConnectionState.CONNECTED, equity=equity)


async def next_message(ws: ClientConnection, kind: str = "snapshot", timeout: float = 5.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


async def test_the_latest_snapshot_arrives_at_once_then_each_newer_one(live_web, nc) -> None:
    trader = live_web.trader()
    account = seed_account(live_web.state, trader.id)
    kv = await nc.jetstream().key_value(subjects.SNAPSHOTS_BUCKET)
    await kv.put(account, encode(snap(account, 3, equity=1003)))
    async with open_as(live_web, trader) as ws:
        hello = await next_message(ws, "hello")
        assert [a["id"] for a in hello["accounts"]] == [account]
        first = await next_message(ws)
        assert (first["seq"], first["snapshot"]["equity"]) == (3, 1003)
        await nc.publish(subjects.snapshot(account), encode(snap(account, 2)))  # older: never sent
        await nc.publish(subjects.snapshot(account), encode(snap(account, 4, equity=1004)))
        news = await next_message(ws)
        assert (news["seq"], news["snapshot"]["equity"]) == (4, 1004)


async def test_a_client_that_keeps_up_gets_each_snapshot_written_straight_to_its_socket_in_order(
    live_web, nc
) -> None:
    trader = live_web.trader("quick")
    account = seed_account(live_web.state, trader.id)
    async with open_as(live_web, trader) as ws:
        await next_message(ws, "hello")
        seen = []
        for seq in range(1, 21):
            await nc.publish(subjects.snapshot(account), encode(snap(account, seq, equity=seq)))
            seen.append(await next_message(ws))  # one at a time: each is news to an idle socket
        assert [(m["seq"], m["snapshot"]["equity"]) for m in seen] == [(s, s) for s in range(1, 21)]
        assert live_web.state.stream_source.feed.written() == 20  # the frame built once, not the ASGI send


async def test_trader_b_never_receives_trader_a_s_account(live_web, nc) -> None:
    alice, bob = live_web.trader("alice"), live_web.trader("bob")
    a_account = seed_account(live_web.state, alice.id)
    b_account = seed_account(live_web.state, bob.id)
    async with open_as(live_web, alice) as a_ws, open_as(live_web, bob) as b_ws:
        await next_message(a_ws, "hello")
        assert [x["id"] for x in (await next_message(b_ws, "hello"))["accounts"]] == [b_account]
        forged = snap(a_account, 1000, equity=666)  # A's account on B's subject: refused by the web
        await nc.publish(subjects.snapshot(b_account), encode(forged))
        for seq in range(1, 21):
            await nc.publish(subjects.snapshot(a_account), encode(snap(a_account, seq)))
            await nc.publish(subjects.snapshot(b_account), encode(snap(b_account, seq)))
        b_seen: list[dict] = []
        while not b_seen or b_seen[-1]["seq"] < 20:
            b_seen.append(await next_message(b_ws))
        a_last = await next_message(a_ws)
        while a_last["seq"] < 20:
            a_last = await next_message(a_ws)
    assert {m["account"] for m in b_seen} == {b_account}
    assert {m["snapshot"]["account"] for m in b_seen} == {b_account}
    assert a_last["account"] == a_account and live_web.state.stream_source.refused >= 1


async def test_a_removed_account_stops_streaming_and_signing_out_closes_the_socket(live_web, nc) -> None:
    trader = live_web.trader()
    keep, drop = seed_account(live_web.state, trader.id), seed_account(live_web.state, trader.id)
    async with open_as(live_web, trader) as ws:
        assert len((await next_message(ws, "hello"))["accounts"]) == 2
        assert trader.send("DELETE", f"/api/v1/accounts/{drop}").status_code == 204
        assert [a["id"] for a in (await next_message(ws, "hello"))["accounts"]] == [keep]
        await nc.publish(subjects.snapshot(drop), encode(snap(drop, 1)))
        await nc.publish(subjects.snapshot(keep), encode(snap(keep, 1)))
        assert (await next_message(ws))["account"] == keep
        assert trader.send("POST", "/api/v1/auth/logout").status_code in (200, 204)
        error = await next_message(ws, "error")
        assert error["code"] == "session_expired"
        async with asyncio.timeout(5):
            await ws.wait_closed()
        assert ws.close_code == 4401


@pytest.mark.parametrize("origin", ["http://evil.example", None])
async def test_a_socket_without_a_valid_caller_is_refused(live_web, origin) -> None:
    trader = live_web.trader()
    headers = {"Cookie": trader.cookie_header()} if origin else {}
    async with connect(ws_url(live_web), additional_headers=headers, origin=origin) as ws:
        error = await next_message(ws, "error")
        async with asyncio.timeout(5):
            await ws.wait_closed()
    expected = ("origin", 4403) if origin else ("not_authenticated", 4401)
    assert (error["code"], ws.close_code) == expected


async def test_a_client_that_stops_reading_gets_the_newest_state_not_a_backlog(live_web, nc) -> None:
    trader = live_web.trader("slow")
    account = seed_account(live_web.state, trader.id)
    bulky = [{"ticket": i, "symbol": "EURUSD", "comment": "x" * 150} for i in range(150)]  # ~30 KB each

    def big(seq: int) -> AccountSnapshot:
        return AccountSnapshot(
            seq=seq, account=account, connection=ConnectionState.CONNECTED, positions=bulky
        )

    async with open_as(live_web, trader, max_queue=1) as ws:  # the client library stops reading: TCP fills
        await next_message(ws, "hello")
        for seq in range(1, 301):
            await nc.publish(subjects.snapshot(account), encode(big(seq)))
        await nc.flush()
        await asyncio.sleep(0.5)  # let the server push into the full socket
        seen = [await next_message(ws)]
        while seen[-1]["seq"] < 300:
            seen.append(await next_message(ws))
    # The socket's buffers hold a few; the rest were replaced by newer ones before they were sent.
    assert len(seen) < 100, len(seen)
    assert seen[-1]["seq"] == 300 and [m["seq"] for m in seen] == sorted(m["seq"] for m in seen)
