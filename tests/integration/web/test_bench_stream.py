"""A small run of ``mtrobot bench stream``: both parts end to end, and their guarantees hold."""

from __future__ import annotations

import pytest

from mtrobot.bench.stream import run_stream_benchmark


@pytest.mark.slow  # ~30 s alone: starts NATS, the simulator and a web worker, runs each part 2 s
@pytest.mark.timeout(300)  # a web worker and a simulator starting on a busy 2-core machine take a while
async def test_bench_stream_smoke() -> None:
    aggregation, fanout = await run_stream_benchmark(seconds=2.0, rate=100, clients=20, traders=2)
    assert aggregation["raw_events_in"] >= 150
    assert aggregation["snapshots_out"] >= 1 and aggregation["snapshots_per_s"] <= 2.5
    assert (
        aggregation["min_gap_between_snapshots_s"] is None
        or aggregation["min_gap_between_snapshots_s"] >= 0.45
    )
    assert aggregation["last_snapshot_equals_rebuild"] and aggregation["last_snapshot_equals_kv"]
    assert fanout["clients_with_the_last_snapshot"] == 20
    assert fanout["messages_received"] >= 20 * 3 and fanout["delay_p99_ms"] is not None
    assert fanout["web_rss_mb_peak"] > 0
