from __future__ import annotations

import asyncio
import signal
import subprocess

import pytest

from mtrobot.bus.server import free_port
from mtrobot.status import collect_status
from tests.contracts import PROVISIONED_ON_THE_BUS
from tests.e2e.proc_tools import (
    agent_pids,
    alive,
    descendants,
    mtrobot_command,
    start_up,
    sweep_containers,
    wait_until,
)


def _wait_ready(data_dir, proc) -> str:
    url_file = data_dir / "run" / "nats.url"
    wait_until(
        lambda: "Press Ctrl-C" in (data_dir.parent / "up.log").read_text(), 60, "mtrobot up ready", proc
    )
    return url_file.read_text().strip()


def _admin(data_dir) -> str:
    """The embedded bus refuses anonymous clients: the operator's identity."""
    return str(data_dir / "run" / "nats-admin.creds")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_up_provisions_the_bus_and_a_signal_leaves_no_child_behind(data_dir, sig) -> None:
    proc = start_up(data_dir)
    try:
        url = _wait_ready(data_dir, proc)
        names = {name for _, name, n, _ in asyncio.run(collect_status(url, 3, _admin(data_dir))) if n >= 0}
        assert names == PROVISIONED_ON_THE_BUS
        children = descendants(proc.pid)
        assert children, "mtrobot up should have started nats-server at least"
        proc.send_signal(sig)
        assert proc.wait(30) == 0
        wait_until(lambda: not any(alive(p) for p in children), 10, "children to exit")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_killed_launcher_takes_its_children_and_its_agents_with_it(data_dir) -> None:
    """Agents too, whatever runs them: a container's agent is not a descendant of `mtrobot up` (its parent is
    podman's conmon), and stops when its lifeline, its stdin, closes with the supervisor."""
    proc = start_up(data_dir)
    try:
        _wait_ready(data_dir, proc)
        wait_until(lambda: bool(agent_pids(data_dir)), 60, "the demo account's agent", proc)
        children = descendants(proc.pid) | set(agent_pids(data_dir))
        proc.kill()
        proc.wait(10)
        wait_until(lambda: not any(alive(p) for p in children), 30, "orphans to exit")
    finally:
        if proc.poll() is None:
            proc.kill()
        sweep_containers(data_dir)


def test_a_second_up_on_the_same_data_dir_is_refused_with_a_clear_message(data_dir) -> None:
    proc = start_up(data_dir)
    try:
        _wait_ready(data_dir, proc)
        second = subprocess.run(
            mtrobot_command("up", "--data-dir", str(data_dir), "--port", str(free_port())),
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert second.returncode == 1
        assert "in use by mtrobot up" in second.stderr
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_second_up_resumes_the_same_bus_state(data_dir) -> None:
    async def publish(url: str) -> None:
        import nats

        nc = await nats.connect(url, user_credentials=_admin(data_dir))
        await nc.jetstream().publish("orders.submitted.acc.EURUSD", b"{}")
        await nc.close()

    proc = start_up(data_dir)
    url = _wait_ready(data_dir, proc)
    asyncio.run(publish(url))
    proc.terminate()
    assert proc.wait(30) == 0
    proc = start_up(data_dir)
    try:
        url = _wait_ready(data_dir, proc)
        orders = next(r for r in asyncio.run(collect_status(url, 3, _admin(data_dir))) if r[1] == "ORDERS")
        assert orders[2] == 1
    finally:
        proc.terminate()
        proc.wait(30)
