"""The simulated server remembers when each login request arrived, refused ones too (``bench storm`` counts
them the way a broker's own login limit would)."""

from __future__ import annotations

import datetime as dt

import pytest

from mtrobot.bench.density import _peak_in_any_second
from mtrobot.broker.backends import open_terminal
from mtrobot.sim.admin import AdminError, LocalAdmin
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.clock import VirtualClock

SERVER = "MTRobot-Demo"


async def test_every_login_request_is_recorded_with_the_server_time_refused_ones_too() -> None:
    broker = SimBroker(clock=VirtualClock(dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)))
    admin = LocalAdmin(broker)
    login = await admin.create_account(
        server=SERVER, password="Master-pass-1", investor_password="Inv-pass-1"
    )
    start = await admin.server_time(server=SERVER)
    term = open_terminal("sim-inprocess", broker=broker)
    assert not await term.initialize(login=login, password="Wrong-pass-1", server=SERVER)
    await admin.advance_clock(seconds=2)
    await admin.start_maintenance(server=SERVER, seconds=60)
    assert not await term.initialize(login=login, password="Master-pass-1", server=SERVER)
    await admin.advance_clock(seconds=61)
    assert await term.initialize(login=login, password="Master-pass-1", server=SERVER)

    times = await admin.login_times(server=SERVER)
    assert len(times) == 3 and times == sorted(times)
    assert times[1] - times[0] == 2000 and times[2] - times[1] == 61000
    assert await admin.login_times(server=SERVER, since_ms=times[1]) == times[1:]
    assert times[0] >= start
    assert await admin.login_times(server="Northwind-Live") == []


@pytest.mark.parametrize("since", [-1, 1.5, "0", True, 2**60])
async def test_a_bad_since_is_refused_naming_the_field(since: object) -> None:
    with pytest.raises(AdminError, match="since_ms"):
        await LocalAdmin(SimBroker()).login_times(server=SERVER, since_ms=since)


def test_the_peak_counts_requests_within_any_one_second_of_server_time() -> None:
    assert _peak_in_any_second([]) == 0
    assert _peak_in_any_second([0, 250, 500, 750, 1000, 1250]) == 4  # [t, t + 1 s): 1000 starts the next
    assert _peak_in_any_second([0, 999, 1000, 1001, 1002, 5000]) == 4
    assert _peak_in_any_second([7, 7, 7]) == 3
