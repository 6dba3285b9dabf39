"""Both real-terminal backends against the recording stand-in: in process, and over a real rpyc socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from mtrobot.broker.backends import open_terminal
from mtrobot.broker.threaded import ThreadedTerminal
from tests.standin.bridge_server import BridgeProcess, running_bridge
from tests.standin.fake_mt5 import FakeMT5

LOGIN, PASSWORD, SERVER = 5001, "master-pw", "Standin-Demo"
BACKENDS = ("metatrader5", "mt5linux")


@dataclass
class Rig:
    """A terminal of one backend and the stand-in behind it (in process, or an rpyc proxy to it)."""

    backend: str
    terminal: ThreadedTerminal
    mt5: Any

    async def attach(self) -> None:
        assert await self.terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)

    def called(self) -> list[str]:
        return [name for name, _thread in self.mt5.standin_calls()]


@pytest.fixture(scope="session")
def bridge() -> Iterator[BridgeProcess]:
    """One stand-in mt5linux server process for the session; each test resets its stand-in."""
    with running_bridge() as process:
        yield process


def make_rig(backend: str, bridge: BridgeProcess, **options: Any) -> Rig:
    if backend == "metatrader5":
        fake = FakeMT5(login=LOGIN, password=PASSWORD, server=SERVER)
        return Rig(backend, open_terminal("metatrader5", module=fake, **options), fake)  # type: ignore[arg-type]
    bridge.mt5.standin_reset()
    terminal = open_terminal("mt5linux", host="127.0.0.1", port=bridge.port, **options)
    return Rig(backend, terminal, bridge.mt5)  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, bridge: BridgeProcess) -> AsyncIterator[Rig]:
    """A fresh, not yet initialised terminal of each backend."""
    made = make_rig(request.param, bridge)
    yield made
    made.mt5.standin_reset()  # opens any gate a failed test left closed
    await made.terminal.aclose()


@pytest.fixture
async def ready(rig: Rig) -> Rig:
    """The same, attached and logged in."""
    await rig.attach()
    return rig
