"""The host-wide login rate is the operator's setting (``MTROBOT_LOGIN_RATE_PER_S``, ``MTROBOT_LOGIN_BURST``),
handed by the supervisor to every agent it starts: a real agent's login takes its token from a bucket of the
configured size, not the built-in 2/s with a burst of 4."""

from __future__ import annotations

import json
from pathlib import Path

from nats.aio.client import Client

from mtrobot.settings import Settings
from tests.integration.agent.agents import Platform, Trader, running


async def test_an_agent_logs_in_at_the_rate_the_operator_configured(
    data_dir: Path, nats_url: str, simbroker: object, nc: Client
) -> None:
    settings = Settings(data_dir=data_dir, nats_url=nats_url, login_rate_per_s=500.0, login_burst=500.0)
    platform = Platform(settings, simbroker)
    try:
        async with running(platform.supervisor()):
            account, _login = await platform.connect_account()
            trader = await Trader(nc, account).listen()
            await trader.wait_running()
            buckets = list((settings.run_dir / "login-buckets").glob("*.json"))
            assert len(buckets) == 1, buckets
            # One login out of a full bucket of 500 leaves 499 (the default burst of 4 would leave at most
            # 3); the bucket never refills above its burst, so nothing later can raise it past 499.
            assert json.loads(buckets[0].read_text())["tokens"] == 499.0
    finally:
        platform.close()
