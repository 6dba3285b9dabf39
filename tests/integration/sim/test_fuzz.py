"""Bad input never kills the simbroker: garbage frames, wrong types and absurd values get MT5-style errors,
and the server keeps serving other clients (hypothesis)."""

from __future__ import annotations

import asyncio
import datetime as dt
import struct
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtrobot.broker import constants as mt5
from mtrobot.broker.backends import open_terminal
from mtrobot.broker.simproto import PROTOCOL_VERSION, pack_frame, unpack_body
from mtrobot.broker.terminal import TERMINAL_FUNCTIONS, Terminal
from mtrobot.sim.admin import LocalAdmin
from mtrobot.sim.broker import AdminApi, SimBroker
from mtrobot.sim.clock import VirtualClock
from mtrobot.sim.connection import Connection
from mtrobot.sim.tcp import SimServer

START = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)
SERVER = "MTRobot-Demo"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.binary(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
request_keys = st.sampled_from(
    [
        "action",
        "magic",
        "order",
        "symbol",
        "volume",
        "price",
        "stoplimit",
        "sl",
        "tp",
        "deviation",
        "type",
        "type_filling",
        "type_time",
        "expiration",
        "comment",
        "position",
        "position_by",
        "bogus",
    ]
)


class Rig:
    def __init__(self, broker: SimBroker, port: int, login: int) -> None:
        self.broker, self.port, self.login = broker, port, login

    async def raw(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def healthy_client(self) -> Terminal:
        term = open_terminal("sim", host="127.0.0.1", port=self.port, call_timeout=5)
        assert await term.initialize(login=self.login, password="Master-pass-1", server=SERVER)
        return term


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    broker = SimBroker(clock=VirtualClock(START))
    login = await LocalAdmin(broker).create_account(
        server=SERVER, password="Master-pass-1", investor_password="Inv-pass-1"
    )
    server = SimServer(broker, tick_period_s=None)
    port = await server.start()
    yield Rig(broker, port, login)
    await server.stop()


async def read_answer(reader: asyncio.StreamReader) -> dict[str, Any]:
    size = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 5))[0]
    return unpack_body(await asyncio.wait_for(reader.readexactly(size), 5))


async def test_garbage_frames_get_an_invalid_params_answer_and_the_server_keeps_serving(rig: Rig) -> None:
    witness = await rig.healthy_client()
    reader, writer = await rig.raw()

    bodies = [
        b"",
        b"\x00",
        b"\xc1",
        b"\x91\x01",
        msgpack.packb([1, 2, 3]),
        msgpack.packb("text"),
        msgpack.packb({"v": 99, "id": 1, "t": "call", "op": "account_info"}),
        msgpack.packb({"v": PROTOCOL_VERSION, "id": "x", "t": "call", "op": 5}),
        msgpack.packb({"v": PROTOCOL_VERSION, "id": 3, "t": "nope"}),
    ]
    for body in bodies:
        writer.write(struct.pack(">I", len(body)) + body)
        await writer.drain()
        answer = await read_answer(reader)
        assert answer["e"][0] in (
            mt5.RES_E_INVALID_PARAMS,
            mt5.RES_E_INVALID_VERSION,
            mt5.RES_E_INTERNAL_FAIL_CONNECT,
        )
    assert await witness.account_info() is not None
    writer.close()


class World:
    """One broker, logged-in connection and terminal shared by every hypothesis example of a test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.broker = SimBroker(clock=VirtualClock(START))
        admin = LocalAdmin(self.broker)
        self.login = self.run(
            admin.create_account(server=SERVER, password="Master-pass-1", investor_password="Inv-pass-1")
        )
        self.connection = Connection(self.broker, AdminApi(self.broker))
        self.term = open_terminal("sim-inprocess", broker=self.broker)
        assert self.run(self.term.initialize(login=self.login, password="Master-pass-1", server=SERVER))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.close()


@pytest.fixture(scope="module")
def world() -> Any:
    w = World()
    yield w
    w.close()


@FUZZ
@given(body=st.binary(max_size=300))
def test_any_bytes_are_answered_or_refused_without_crashing(world: World, body: bytes) -> None:
    answer = world.run(world.connection.handle(body))
    assert answer.frame is not None
    message = unpack_body(answer.frame[4:])
    assert isinstance(message["e"], list) and isinstance(message["e"][0], int)


@FUZZ
@given(request=st.dictionaries(request_keys, values, max_size=8))
def test_random_trade_requests_get_mt5_style_answers(world: World, request: dict[str, Any]) -> None:
    world.run(_random_request(world.term, request))


async def _random_request(term: Terminal, request: dict[str, Any]) -> None:
    for call in (term.order_check, term.order_send):
        result = await call(request)
        code, text = await term.last_error()
        if result is None:
            assert code == mt5.RES_E_INVALID_PARAMS and text
        else:
            assert code == mt5.RES_S_OK and isinstance(result.retcode, int)
    info = await term.account_info()
    assert info is not None and info.margin_free == pytest.approx(info.equity - info.margin, abs=0.02)


@FUZZ
@given(
    op=st.sampled_from(TERMINAL_FUNCTIONS),
    args=st.lists(values, max_size=6),
    kwargs=st.dictionaries(st.text(max_size=10), values, max_size=4),
)
def test_every_function_survives_arbitrary_arguments(
    world: World, op: str, args: list[Any], kwargs: dict[str, Any]
) -> None:
    world.run(_arbitrary_call(world, op, args, kwargs))


async def _arbitrary_call(world: World, op: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    connection = Connection(world.broker, AdminApi(world.broker))
    init = {
        "v": PROTOCOL_VERSION,
        "id": 1,
        "t": "call",
        "op": "initialize",
        "a": [],
        "k": {"login": world.login, "password": "Master-pass-1", "server": SERVER},
    }
    assert unpack_body((await connection.handle(pack_frame(init)[4:])).frame[4:])["r"] is True  # type: ignore[index]
    frame = {"v": PROTOCOL_VERSION, "id": 2, "t": "call", "op": op, "a": args, "k": kwargs}
    try:
        body = pack_frame(frame)[4:]
    except (TypeError, ValueError, OverflowError):
        return
    answer = await connection.handle(body)
    assert answer.frame is not None
    code = unpack_body(answer.frame[4:])["e"][0]
    assert code in (
        mt5.RES_S_OK,
        mt5.RES_E_INVALID_PARAMS,
        mt5.RES_E_NOT_FOUND,
        mt5.RES_E_FAIL,
        mt5.RES_E_INTERNAL_FAIL_TIMEOUT,
        mt5.RES_E_AUTH_FAILED,
        mt5.RES_E_INTERNAL_FAIL_CONNECT,
        mt5.RES_E_UNSUPPORTED,
    ), (op, args, kwargs)
    after = await connection.handle(pack_frame({**init, "id": 3, "op": "account_info", "k": {}})[4:])
    assert after.frame is not None


async def test_an_oversized_frame_closes_only_that_connection(rig: Rig) -> None:
    witness = await rig.healthy_client()
    reader, writer = await rig.raw()
    writer.write(struct.pack(">I", 50_000_000))
    await writer.drain()
    answer = await read_answer(reader)
    assert answer["e"][0] == mt5.RES_E_INVALID_PARAMS
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert await witness.account_info() is not None
    assert (await witness.symbols_total()) > 0


async def test_absurd_values_in_a_live_session_are_refused_and_the_session_survives(rig: Rig) -> None:
    term = await rig.healthy_client()
    absurd: list[dict[str, Any]] = [
        {"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 1e308, "type": 0, "price": 1.0},
        {"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": -1.0, "type": 0, "price": 1.0},
        {
            "action": mt5.TRADE_ACTION_PENDING,
            "symbol": "EURUSD",
            "volume": 0.1,
            "type": 2,
            "price": 1e300,
            "type_filling": 2,
        },
        {"action": 2**32 - 1},
        {"action": mt5.TRADE_ACTION_SLTP, "position": 2**64 - 1, "sl": 1e-300},
        {"action": mt5.TRADE_ACTION_DEAL, "symbol": "E" * 64, "volume": 0.1, "type": 99, "price": 1.0},
    ]
    for request in absurd:
        result = await term.order_send(request)
        assert result is not None and result.retcode not in (mt5.TRADE_RETCODE_DONE, mt5.TRADE_RETCODE_PLACED)
    assert await term.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 2**31 - 1, 2**31 - 1) is not None
    assert await term.copy_ticks_from("EURUSD", 1e18, 10, mt5.COPY_TICKS_ALL) is not None
    assert await term.history_deals_get(-1, 10) is None
    assert await term.positions_total() == 0 and await term.account_info() is not None


async def test_a_silent_client_is_disconnected_after_the_inactivity_limit(rig: Rig) -> None:
    rig.broker.default_inactivity_s = 0.2
    reader, writer = await rig.raw()
    writer.write(struct.pack(">I", 100) + b"partial")  # a frame that never completes
    await writer.drain()
    farewell = await read_answer(reader)  # the watchdog says goodbye, then closes
    assert farewell["gone"] is True and farewell["e"][0] == mt5.RES_E_INTERNAL_FAIL_CONNECT
    assert await asyncio.wait_for(reader.read(), 5) == b""
    rig.broker.default_inactivity_s = 30.0
    witness = await rig.healthy_client()
    assert await witness.account_info() is not None


admin_ops = st.sampled_from([op for op in AdminApi.OPERATIONS if op != "advance_clock"])


@pytest.fixture(scope="module")
def admin_world() -> Any:
    w = World()
    yield w
    w.close()


@FUZZ
@given(
    op=admin_ops,
    kwargs=st.dictionaries(
        st.sampled_from(
            [
                "server",
                "login",
                "symbol",
                "n",
                "ms",
                "seconds",
                "bid",
                "ask",
                "amount",
                "password",
                "investor_password",
                "balance",
                "leverage",
                "currency",
                "mode",
                "retcode",
                "frozen",
                "trade_mode",
                "stops_level",
                "execute",
                "disconnect",
                "off",
                "name",
                "fifo_close",
            ]
        ),
        values,
        max_size=6,
    ),
)
def test_admin_operations_refuse_bad_arguments_with_a_message(
    admin_world: World, op: str, kwargs: dict[str, Any]
) -> None:
    """The back office is trusted, but it still must not crash or hang on nonsense."""
    frame = {"v": PROTOCOL_VERSION, "id": 9, "t": "admin", "op": op, "k": kwargs}
    try:
        body = pack_frame(frame)[4:]
    except (TypeError, ValueError, OverflowError):
        return
    answer = admin_world.run(Connection(admin_world.broker, AdminApi(admin_world.broker)).handle(body))
    assert answer.frame is not None
    code, text = unpack_body(answer.frame[4:])["e"]
    assert code in (mt5.RES_S_OK, mt5.RES_E_INVALID_PARAMS) and text
