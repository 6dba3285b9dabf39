"""Browser tests: Playwright for Python driving Debian's chromium (``make browser`` installs it; the path
comes from ``MTROBOT_CHROMIUM``, default /usr/bin/chromium) against a real platform: the simulator as a
process, NATS from the wheel, the web app on a free port, and ``mtrobot supervisor`` as a process, which runs
one ``mtrobot agent`` per connected account. Screenshots of every page: ``.artifacts/screenshots``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from mtrobot.bus import subjects
from mtrobot.bus.codec import decode
from mtrobot.bus.connect import connect
from mtrobot.core.events import AccountSnapshot
from mtrobot.settings import Settings
from mtrobot.web.config import WebOptions
from mtrobot.web.state import AppState
from tests.browser.netproxy import CuttableProxy
from tests.e2e.proc_tools import mtrobot_command
from tests.integration.tenants.conftest import sim_data_dir  # noqa: F401 - the shared simulator fixture
from tests.integration.web.conftest import LiveWeb, serve

CHROMIUM = Path(os.environ.get("MTROBOT_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}


@dataclass
class Platform:
    url: str
    """The web app as the browser sees it: through a proxy the test can cut (a network drop)."""
    direct_url: str
    state: AppState
    proxy: CuttableProxy
    supervisor: subprocess.Popen[bytes]
    nats_url: str

    def snapshot(self, account: str) -> AccountSnapshot:
        """The account's latest snapshot in KV (what an agent last published)."""

        async def read() -> AccountSnapshot:
            nc = await connect(self.nats_url, "browser-tests", max_reconnect_attempts=3)
            try:
                kv = await nc.jetstream(timeout=5).key_value(subjects.SNAPSHOTS_BUCKET)
                return decode(AccountSnapshot, (await kv.get(account)).value)
            finally:
                await nc.close()

        with ThreadPoolExecutor(1) as pool:  # sync Playwright holds this thread's event loop
            return pool.submit(asyncio.run, read()).result(30)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if predicate():
                    return
            except Exception:
                if time.monotonic() > deadline:
                    raise
            assert time.monotonic() < deadline, "timed out waiting for a condition"
            time.sleep(0.1)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            f"no chromium at {CHROMIUM}: run `make browser` (installs Debian's chromium)", pytrace=False
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_path: Path, nats_url: str, sim_data_dir: Path) -> Iterator[object]:  # noqa: F811
    # After the asyncio-based session fixtures: sync Playwright keeps an event loop running in this thread.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(chromium_path), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def platform(sim_data_dir: Path, tmp_path: Path, nats_url: str) -> Iterator[Platform]:  # noqa: F811
    """An empty database, the simulator of the session, and the supervisor with its agents."""
    database = f"sqlite:///{tmp_path / 'web.db'}"
    settings = Settings(data_dir=sim_data_dir, database_url=database, nats_url=nats_url)
    options = WebOptions(cookie_secure=False, stream_recheck_s=1.0)
    for web in serve(settings, options):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MTROBOT_")}
        env |= {
            "MTROBOT_DATA_DIR": str(sim_data_dir),
            "MTROBOT_DATABASE_URL": database,
            "MTROBOT_NATS_URL": nats_url,
        }
        with open(tmp_path / "supervisor.log", "wb") as log:
            supervisor = subprocess.Popen(
                mtrobot_command("supervisor"), stdout=log, stderr=subprocess.STDOUT, env=env
            )
        proxy = CuttableProxy(int(web.url.rsplit(":", 1)[1])).start()
        try:
            yield Platform(proxy.url, web.url, web.state, proxy, supervisor, nats_url)
        finally:
            proxy.stop()
            supervisor.terminate()
            try:
                supervisor.wait(30)
            except subprocess.TimeoutExpired:
                supervisor.kill()
                supervisor.wait(5)


@pytest.fixture
def web_only(sim_data_dir: Path, tmp_path: Path, nats_url: str) -> Iterator[LiveWeb]:  # noqa: F811
    """The web app alone (no agents): for pages whose subject is not an account."""
    database = f"sqlite:///{tmp_path / 'web.db'}"
    settings = Settings(data_dir=sim_data_dir, database_url=database, nats_url=nats_url)
    yield from serve(settings, WebOptions(cookie_secure=False))


@pytest.fixture
def context(browser) -> Iterator[object]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture
def phone(browser) -> Iterator[object]:
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    yield ctx
    ctx.close()


def shot(page, name: str) -> Path:
    """Keep a screenshot of the page as a test artefact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
