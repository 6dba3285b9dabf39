"""`mtrobot recorder` as a real child process, and its chDB read (chDB holds one directory per process)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from mtrobot.bus import subjects
from mtrobot.recorder.service import EXECUTIONS_DURABLE

REPO = Path(__file__).resolve().parents[3]


async def spawn_recorder(
    nats_url: str, data_dir: Path, *args: str, failpoints: str = ""
) -> asyncio.subprocess.Process:
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MTROBOT_NATS_URL=nats_url, MTROBOT_DATA_DIR=str(data_dir))
    env["MTROBOT_FAILPOINTS"] = failpoints
    env.pop("MTROBOT_KAFKA_BOOTSTRAP", None)
    env.pop("MTROBOT_CLICKHOUSE_URL", None)
    log = open(data_dir / "recorder.log", "ab")  # noqa: SIM115
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mtrobot", "recorder", *args, env=env, cwd=str(REPO),
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip
    finally:
        log.close()


async def caught_up(js: Any) -> bool:
    """The recorder's consumer has every fill in the stream delivered and acknowledged."""
    try:
        info = await js.consumer_info(subjects.FILLS_STREAM, EXECUTIONS_DURABLE)
    except Exception:
        return False
    return bool(info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq > 0)


async def until(predicate: Any, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def executions_rows(chdb_dir: Path, account: str) -> list[dict[str, Any]]:
    code = (
        "import json,sys; from pathlib import Path;"
        "from mtrobot.recorder.executions import Executions, chdb_dsn;"
        "s=Executions(chdb_dsn(Path(sys.argv[1])));"
        "print(json.dumps(s.rows(sys.argv[2]), default=str)); s.close()"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, str(chdb_dir), account, stdout=asyncio.subprocess.PIPE, cwd=str(REPO)
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return list(json.loads(out))
