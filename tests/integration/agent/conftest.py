from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mtrobot.settings import Settings
from tests.integration.agent.agents import Platform
from tests.integration.connector.simfixtures import simbroker  # noqa: F401 - a real TCP simbroker


@pytest.fixture
def platform(data_dir: Path, nats_url: str, simbroker: object) -> Iterator[Platform]:  # noqa: F811
    p = Platform(Settings(data_dir=data_dir, nats_url=nats_url), simbroker)
    yield p
    p.close()
