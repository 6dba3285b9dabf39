"""The real-terminal backends' own rules: lazy imports, one worker per module, defaults, no secret in logs."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import subprocess
import sys
import threading
from typing import Any

import numpy as np
import pytest
import structlog

from mtrobot.broker.backends import UnknownBackend, open_terminal
from mtrobot.broker.results import MalformedResult, to_structure
from mtrobot.broker.structures import Tick, TradeOrder
from mtrobot.broker.terminal import Terminal
from tests.standin.ctypes_like import build, c_type, defaults
from tests.standin.fake_mt5 import FakeMT5, wait_until

TERMINAL_EXE = "C:\\MT5\\acc-1\\terminal64.exe"


def test_the_core_imports_neither_the_official_package_nor_rpyc() -> None:
    code = (
        "import sys, mtrobot.cli, mtrobot.broker.backends\n"
        "import mtrobot.broker.metatrader5, mtrobot.broker.mt5linux\n"
        "bad = {'MetaTrader5', 'rpyc'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.skipif(importlib.util.find_spec("MetaTrader5") is not None, reason="the package is installed")
def test_selecting_metatrader5_without_the_package_says_how_to_install_it() -> None:
    with pytest.raises(UnknownBackend, match=r"pip install 'mtrobot\[mt5\]'"):
        open_terminal("metatrader5")


async def test_both_backends_implement_the_terminal_interface() -> None:
    assert isinstance(open_terminal("metatrader5", module=FakeMT5()), Terminal)
    assert isinstance(open_terminal("mt5linux", port=18812), Terminal)


async def test_initialize_without_a_path_attaches_to_this_accounts_own_portable_install() -> None:
    fake = FakeMT5()
    terminal = open_terminal("metatrader5", path=TERMINAL_EXE, portable=True, module=fake)
    assert await terminal.initialize(login=5001, password="master-pw", server="Standin-Demo")
    (call,) = fake.standin_call_log()
    assert call.name == "initialize" and call.args == (TERMINAL_EXE,)
    assert call.kwargs == {"login": 5001, "password": "master-pw", "server": "Standin-Demo", "timeout": 60000,
                           "portable": True}  # fmt: skip


async def test_every_terminal_on_one_module_shares_one_worker_thread() -> None:
    fake, other = FakeMT5(), FakeMT5()
    first, second = (open_terminal("metatrader5", module=fake) for _ in range(2))
    third = open_terminal("metatrader5", module=other)
    await first.shutdown(), await second.shutdown(), await third.shutdown()  # type: ignore[func-returns-value]
    assert first.worker_thread_id == second.worker_thread_id != third.worker_thread_id  # type: ignore[attr-defined]


class ExplodingModule:
    """A module whose initialize raises with the password in the message (a hostile or broken build)."""

    def initialize(self, *args: Any, **kwargs: Any) -> bool:
        raise RuntimeError(f"cannot log in with {kwargs.get('password')}")

    def last_error(self) -> tuple[int, str]:
        return (1, "Success")


async def test_an_exception_inside_the_module_is_a_failed_call_and_the_password_never_reaches_the_logs() -> (
    None
):
    terminal = open_terminal("metatrader5", module=ExplodingModule())
    with structlog.testing.capture_logs() as logs:
        assert await terminal.initialize(login=1, password="hunter2-secret", server="X") is False
    assert await terminal.last_error() == (-10000, "IPC call failed")
    assert [entry.get("error") for entry in logs] == ["RuntimeError"]
    assert "hunter2-secret" not in repr(logs)


class HalfTickModule(FakeMT5):
    """Returns a tick that lacks fields, as a broken bridge might."""

    def symbol_info_tick(self, symbol: str) -> Any:  # type: ignore[override]
        return c_type("Tick", ["time", "bid"])(1, 1.1)


async def test_a_result_missing_fields_is_a_failed_call_never_a_half_filled_structure() -> None:
    terminal = open_terminal("metatrader5", module=HalfTickModule())
    assert await terminal.initialize()
    with structlog.testing.capture_logs() as logs:
        assert await terminal.symbol_info_tick("EURUSD") is None
    assert await terminal.last_error() == (-10000, "IPC call failed")
    assert [entry.get("error") for entry in logs] == ["MalformedResult"]


def test_results_are_copied_by_field_name_whatever_the_order() -> None:
    fields = list(TradeOrder._fields)
    fields.reverse()
    values = defaults("TradeOrder") | {"volume_initial": 0.3, "volume_current": 0.1, "symbol": "EURUSD"}
    reversed_order = build(c_type("TradeOrder", fields), values)
    copied = to_structure(TradeOrder, reversed_order)
    assert type(copied) is TradeOrder and copied._asdict() == values
    with pytest.raises(MalformedResult, match="Tick result lacks ask"):
        to_structure(Tick, {"time": 1, "bid": 1.0})


async def test_a_caller_cancelled_mid_call_leaves_the_terminal_failing_fast_until_the_call_returns() -> None:
    fake = FakeMT5()
    terminal = open_terminal("metatrader5", module=fake)
    assert await terminal.initialize()
    fake.standin_block("positions_get")
    task = asyncio.create_task(terminal.positions_get())
    assert await asyncio.to_thread(fake.standin_wait_entered, "positions_get")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await terminal.account_info() is None and (await terminal.last_error())[0] == -10004
    assert await terminal.wait_idle(0.05) is False
    fake.standin_release("positions_get")
    assert await terminal.wait_idle(10)
    assert await terminal.account_info() is not None


def test_each_accounts_terminal_comes_from_its_own_options_never_the_hub() -> None:
    from mtrobot.broker.backends import backend_options
    from mtrobot.hub.schemas import IDENTITY_FIELDS, MT5Connection

    windows = backend_options("metatrader5", terminal_path=TERMINAL_EXE, portable=True)
    wine = backend_options("mt5linux", bridge_host="10.0.0.5", bridge_port=18900)
    assert windows == {"path": TERMINAL_EXE, "portable": True}
    assert wine == {"host": "10.0.0.5", "port": 18900}
    assert isinstance(open_terminal("mt5linux", **wine), Terminal)
    for field in IDENTITY_FIELDS:
        with pytest.raises(ValueError, match="record"):
            MT5Connection.model_validate({field: "x"})


async def test_a_dropped_bridge_terminal_frees_its_worker_thread() -> None:
    terminal = open_terminal("mt5linux", port=18812)
    await terminal.shutdown()  # runs on the worker: the thread exists
    ident = terminal.worker_thread_id  # type: ignore[attr-defined]
    del terminal
    gc.collect()
    assert wait_until(lambda: ident not in {t.ident for t in threading.enumerate()})


async def test_a_call_queued_behind_a_slow_one_that_times_out_was_never_made() -> None:
    fake = FakeMT5()
    terminal = open_terminal("metatrader5", module=fake, call_timeout=0.2)
    fake.standin_block("initialize")
    slow = asyncio.create_task(terminal.initialize())  # initialize has its own, longer limit
    assert await asyncio.to_thread(fake.standin_wait_entered, "initialize")
    with structlog.testing.capture_logs() as logs:
        assert await terminal.account_info() is None
    assert await terminal.last_error() == (-10004, "No IPC connection")
    assert any("not made" in entry.get("detail", "") for entry in logs)
    fake.standin_release("initialize")
    assert await slow is True
    assert [call.name for call in fake.standin_call_log()] == ["initialize"]  # account_info never ran


def test_an_empty_series_is_an_empty_array_of_the_mt5_dtype_whatever_it_came_as() -> None:
    from mtrobot.broker.arrays import RATES_DTYPE
    from mtrobot.broker.results import to_array

    for empty in (np.array([]), np.zeros(0, dtype=[("time", "<i8")]), []):
        copied = to_array(RATES_DTYPE, empty)
        assert copied.dtype == RATES_DTYPE and len(copied) == 0
    with pytest.raises(MalformedResult, match="lacks the columns"):
        to_array(RATES_DTYPE, np.zeros(2, dtype=[("time", "<i8")]))


def test_the_bridge_helper_turns_results_into_plain_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from mtrobot.broker.mt5linux import REMOTE_HELPER, decode

    monkeypatch.setitem(sys.modules, "MetaTrader5", FakeMT5())
    helper: dict[str, Any] = {}
    exec(REMOTE_HELPER.read_text(encoding="utf-8"), helper)  # as the bridge's Python runs it
    tick = build(c_type("Tick"), defaults("Tick") | {"bid": np.float64(1.1), "volume": np.int64(3)})
    wire = helper["plain"]((tick, np.zeros(2, dtype=[("time", "<i8"), ("bid", "<f8")])))
    assert decode(wire)[0] == defaults("Tick") | {"bid": 1.1, "volume": 3}
    assert type(decode(wire)[0]["bid"]) is float and decode(wire)[1].dtype.names == ("time", "bid")
