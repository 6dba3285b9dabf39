"""Conformance of the real-terminal backends: the checks of ``mtrobot conformance``, here and for real.

Against the recording stand-in they always run (both backends, demo trade included). Against a real
terminal they run when MTROBOT_MT5_LOGIN, MTROBOT_MT5_PASSWORD and MTROBOT_MT5_SERVER are set (plus the
MetaTrader5 package for ``metatrader5``, or MTROBOT_MT5_BRIDGE=host:port for ``mt5linux``); otherwise they
are skipped with the reason. The one documented command for operators is ``mtrobot conformance``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from mtrobot.broker.backends import REAL_BACKENDS, open_terminal
from mtrobot.broker.conformance import (
    ENV_LOGIN,
    ENV_PASSWORD,
    ENV_SERVER,
    Credentials,
    credentials_from_env,
    requirements,
    run_checks,
)
from tests.standin.bridge_server import BridgeProcess, running_bridge
from tests.standin.fake_mt5 import FakeMT5

STANDIN_ENV = {ENV_LOGIN: "5001", ENV_PASSWORD: "master-pw", ENV_SERVER: "Standin-Demo"}
STANDIN = credentials_from_env(STANDIN_ENV)
assert STANDIN is not None


@pytest.fixture(scope="module")
def bridge() -> Iterator[BridgeProcess]:
    with running_bridge() as process:
        yield process


def standin_terminal(backend: str, bridge: BridgeProcess, module: Any = None) -> Any:
    if backend == "metatrader5":
        return open_terminal("metatrader5", module=module or FakeMT5())
    bridge.mt5.standin_reset()
    return open_terminal("mt5linux", port=bridge.port)


@pytest.mark.parametrize("real_backend", REAL_BACKENDS)
async def test_every_check_passes_on_the_standin_including_a_demo_trade(
    real_backend: str, bridge: BridgeProcess
) -> None:
    assert STANDIN is not None
    outcomes = await run_checks(standin_terminal(real_backend, bridge), STANDIN, trade=True)
    assert [(o.name, o.status) for o in outcomes if o.status != "pass"] == []
    assert len(outcomes) == 9


class LyingTotals(FakeMT5):
    """A terminal whose positions_total disagrees with positions_get."""

    def positions_total(self, *args: Any, **kwargs: Any) -> int:  # type: ignore[override]
        return 7


async def test_a_terminal_that_breaks_the_interface_fails_its_check_and_the_rest_still_run(
    bridge: BridgeProcess,
) -> None:
    assert STANDIN is not None
    outcomes = await run_checks(standin_terminal("metatrader5", bridge, LyingTotals()), STANDIN)
    statuses = {o.name: o.status for o in outcomes}
    assert statuses["orders, positions and history"] == "fail"
    assert statuses["demo trade round trip"] == "skip" and statuses["shutdown"] == "pass"


async def test_a_wrong_password_stops_the_run_at_initialize(bridge: BridgeProcess) -> None:
    wrong = Credentials(5001, SecretStr("nope"), "Standin-Demo")
    outcomes = await run_checks(standin_terminal("metatrader5", bridge), wrong)
    assert [(o.name, o.status) for o in outcomes] == [("initialize and version", "fail")]
    assert "Authorization failed" in outcomes[0].detail and "nope" not in outcomes[0].detail


def real_terminal_options(backend: str) -> dict[str, Any]:
    """Skip (with the reason) unless this machine can reach a real terminal of ``backend``."""
    missing = [need.name for need in requirements(backend) if need.satisfied is False]
    if backend == "mt5linux" and not os.environ.get("MTROBOT_MT5_BRIDGE"):
        missing.append("MTROBOT_MT5_BRIDGE (host:port of the mt5linux server)")
    if missing:
        pytest.skip(f"no real {backend} terminal: set {', '.join(missing)}")
    if backend == "metatrader5":
        return {"path": os.environ.get("MTROBOT_MT5_TERMINAL_PATH") or None}
    host, _, port = os.environ["MTROBOT_MT5_BRIDGE"].rpartition(":")
    return {"host": host or "127.0.0.1", "port": int(port)}


@pytest.mark.parametrize("real_backend", REAL_BACKENDS)
async def test_a_real_terminal_conforms(real_backend: str) -> None:
    options = real_terminal_options(real_backend)
    credentials = credentials_from_env()
    assert credentials is not None
    outcomes = await run_checks(open_terminal(real_backend, **options), credentials,
                                trade=os.environ.get("MTROBOT_MT5_TRADE") == "1")  # fmt: skip
    assert [(o.name, o.detail) for o in outcomes if o.status == "fail"] == []


def mtrobot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MTROBOT_MT5_")}
    return subprocess.run([sys.executable, "-m", "mtrobot", *args], env=clean | env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_a_dry_run_without_credentials_prints_exactly_what_it_needs() -> None:
    run = mtrobot("conformance", "--backend", "metatrader5", "--dry-run", env={})
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "mtrobot conformance, backend metatrader5; it needs:"
    for name in (ENV_LOGIN, ENV_PASSWORD, ENV_SERVER):
        assert any(line.startswith(f"  [ ] {name}: ") for line in lines), name
    have_mt5 = "x" if importlib.util.find_spec("MetaTrader5") else " "
    assert any(line.startswith(f"  [{have_mt5}] MetaTrader5 package: ") for line in lines)
    assert lines[-1].startswith("dry run: no terminal was contacted; still missing: MTROBOT_MT5_LOGIN, ")


def test_a_dry_run_with_credentials_marks_them_present_and_never_prints_the_password() -> None:
    run = mtrobot("conformance", "--backend", "mt5linux", "--dry-run", env=STANDIN_ENV)
    assert run.returncode == 0 and f"  [x] {ENV_PASSWORD}: " in run.stdout
    assert "master-pw" not in run.stdout + run.stderr


def test_a_run_without_credentials_is_skipped_with_the_reason() -> None:
    run = mtrobot("conformance", "--backend", "mt5linux", env={})
    assert run.returncode == 0
    reason = f"SKIPPED: set {ENV_LOGIN}, {ENV_PASSWORD}, {ENV_SERVER} to run against a real terminal"
    assert run.stdout.splitlines()[-1] == reason


def test_the_one_command_runs_every_check_through_a_bridge(bridge: BridgeProcess) -> None:
    bridge.mt5.standin_reset()
    run = mtrobot("conformance", "--backend", "mt5linux", "--bridge-port", str(bridge.port), "--trade",
                  env=STANDIN_ENV)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == "PASSED: 9 results, 0 failed"
    assert "master-pw" not in run.stdout + run.stderr


def test_an_unknown_backend_is_refused_naming_the_option() -> None:
    run = mtrobot("conformance", "--backend", "sim", env={})
    assert run.returncode == 2 and "--backend" in run.stderr
