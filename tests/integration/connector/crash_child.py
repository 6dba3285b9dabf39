"""The process the crash test kills: one connector on the TCP simbroker, no hub, no health server.

Started as ``python -m tests.integration.connector.crash_child`` with one JSON line of settings on stdin;
``MTROBOT_FAILPOINTS`` in its environment may make it SIGKILL itself at a point of the order path.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from pydantic import SecretStr

from mtrobot.broker.backends import open_terminal
from mtrobot.connector.backoff import Backoff
from mtrobot.connector.options import ConnectorOptions
from mtrobot.connector.service import Connector, ConnectorParts
from mtrobot.logging import configure_logging
from mtrobot.settings import Settings


async def main() -> None:
    cfg = json.loads(sys.stdin.readline())
    configure_logging(level=cfg.get("log_level", "WARNING"))
    options = ConnectorOptions(
        login=cfg["login"],
        server=cfg["server"],
        retry_backoff=Backoff(0.01, 0.05),
        reconnect_backoff=Backoff(0.05, 0.5),
        unknown_settle_s=cfg["settle_s"],
        pending_poll_s=0.1,
        ack_wait_s=cfg["ack_wait_s"],
        fetch_batch=cfg.get("fetch_batch", 4),
    )

    def factory():  # type: ignore[no-untyped-def]
        return open_terminal("sim", host=cfg["host"], port=cfg["port"])

    connector = Connector(
        cfg["account"],
        Settings(data_dir=Path(cfg["data_dir"])),
        SecretStr(cfg["password"]),
        options,
        ConnectorParts(factory),
        nats_url=cfg["nats_url"],
        use_hub=False,
    )
    await connector.start()
    print("started", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await connector.stop()


if __name__ == "__main__":
    asyncio.run(main())
