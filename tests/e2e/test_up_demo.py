"""``mtrobot up`` on a fresh data dir: the URL and the demo login are printed and the login works; a second
``up`` on the same data dir still has a working demo account."""

from __future__ import annotations

import re
import subprocess

import httpx

from tests.e2e.proc_tools import start_up, wait_until

LOGIN_RE = re.compile(r"web\s+(http://[\d.:]+)\s+\(demo login: (\S+) / (\S+)\)")


def start_and_sign_in(data_dir) -> tuple[subprocess.Popen[bytes], httpx.Client, str]:
    """``mtrobot up``; returns the process, a client signed in with the printed demo login, its CSRF token."""
    proc = start_up(data_dir)
    log = data_dir.parent / "up.log"
    wait_until(lambda: "Press Ctrl-C" in log.read_text(), 120, "mtrobot up ready", proc)
    match = LOGIN_RE.search(log.read_text())
    assert match, log.read_text()
    url, email, password = match.groups()
    client = httpx.Client(base_url=url, timeout=10)
    csrf: list[str] = []

    def demo_ready() -> bool:
        try:
            r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
            if r.status_code != 200:
                return False
            csrf[:] = [r.json()["csrf_token"]]
            return [a["id"] for a in client.get("/api/v1/accounts").json()] == ["demo"]
        except httpx.HTTPError:
            return False

    wait_until(demo_ready, 60, "the demo account", proc)
    return proc, client, csrf[0]


def test_up_prints_the_url_and_a_demo_login_and_a_second_up_still_has_a_working_demo(data_dir) -> None:
    proc, client, _csrf = start_and_sign_in(data_dir)
    try:
        assert client.get("/api/v1/accounts/demo/portfolio").json()["active"] is True
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    (data_dir.parent / "up.log").write_text("")
    # The simulator forgets its accounts when it stops: the second start opens the demo account again.
    proc, client, csrf = start_and_sign_in(data_dir)
    try:

        def demo_connects() -> bool:
            r = client.post("/api/v1/accounts/demo/test", headers={"X-CSRF-Token": csrf})
            return r.status_code == 200 and r.json()["ok"] is True

        wait_until(demo_connects, 30, "the demo account to log in at the new simulator", proc)
    finally:
        proc.terminate()
        proc.wait(30)
