"""The master key reaches only the children of ``mtrobot up`` that need it (the web seals new credentials, the
supervisor unwraps data keys): not nats-server, not the simulator or the hub, not any agent or connector, in
neither its environment, its argv nor its memory."""

from __future__ import annotations

import base64
import secrets

from mtrobot.proc import proc_status
from tests.e2e.proc_tools import agent_pids, descendants, start_up, wait_until
from tests.secret_scan import cmdline, where_held

NEEDS_THE_KEY = (" web ", " supervisor ")


def _agents(pids: set[int]) -> list[int]:
    words = (" connector ", " agent ", " mtrobot.agent ")  # `mtrobot agent` or `python -m mtrobot.agent`
    return [p for p in pids if any(word in f" {cmdline(p)} " for word in words)]


def _children(pid: int, data_dir) -> set[int]:
    """The descendants of `mtrobot up`, and its agents wherever they run: with each container's monitor
    (conmon, the agent's parent there) and the podman processes it runs."""
    agents = set(agent_pids(data_dir))
    parents = {int(proc_status(a).get("PPid", "0")) for a in agents}
    monitors = {p for p in parents if p > 1 and proc_status(p).get("Name") == "conmon"}
    return descendants(pid) | agents | monitors | {d for m in monitors for d in descendants(m)}


def test_the_master_key_reaches_no_child_but_those_that_need_it(data_dir) -> None:
    material = secrets.token_bytes(32)
    key = base64.urlsafe_b64encode(material).decode()
    proc = start_up(data_dir, env={"MTROBOT_MASTER_KEY": key})
    try:
        log = data_dir.parent / "up.log"
        wait_until(lambda: "Press Ctrl-C" in log.read_text(), 60, "mtrobot up ready", proc)
        wait_until(lambda: _agents(set(agent_pids(data_dir))), 60, "the demo account's agent", proc)
        children = _children(proc.pid, data_dir)
        needles = [key.encode(), base64.b64encode(material), material]
        checked, leaks = [], {}
        for pid in children:
            line = f" {cmdline(pid)} "
            if any(part in line for part in NEEDS_THE_KEY):
                continue
            checked.append(line.strip())
            held = where_held(pid, needles)
            if held:
                leaks[line.strip()] = held
        assert any("nats-server" in c for c in checked), checked
        assert _agents(children)
        assert leaks == {}, f"the master key is held by {leaks}"
    finally:
        proc.terminate()
        proc.wait(30)
