from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.e2e.proc_tools import mtrobot_command


def _bench(*args: str, timeout: float = 180) -> dict[str, Any]:
    command = mtrobot_command("bench", *args, "--floor-samples", "30")
    out = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _stands_on_its_floor(result: dict[str, Any]) -> None:
    """The bare costs of the same run, their sum, and CPU per order with the simulator's apart."""
    parts = ("nats_request_reply", "jetstream_publish_ack", "sim_order_send", "journal_fsync")
    medians = [result[f"{p}_p50_ms"] for p in parts]
    assert all(m > 0 for m in medians)
    assert abs(result["floor_ms"] - sum(medians)) < 0.01
    assert result["cpu_ms_per_order"] > 0 and result["sim_cpu_ms_per_order"] >= 0
    assert set(result["cpu_ms_per_order_by_process"]) == {"connectors", "nats", "recorder"}
    assert result["connector_rss_mb"] > 0
    assert result["orders_retried"] >= 0


def test_bench_latency_reports_order_latency_beside_the_floor_it_stands_on() -> None:
    result = _bench("latency", "--orders", "5", "--warmup", "1")
    assert result["bench"] == "latency" and result["orders"] == 5
    assert result["broker_rate_limit"] == 0 and result["orders_retried"] == 0  # the broker's policy lifted
    assert 0 < result["nats_request_reply_p50_ms"] < result["order_p50_ms"] <= result["order_p99_ms"]
    assert result["ratio_p50"] > 1 and result["ratio_to_floor_p50"] > 0
    _stands_on_its_floor(result)


@pytest.mark.slow  # a whole platform started (~30 s on the shared 2-core machine)
def test_bench_throughput_lifts_the_broker_limit_for_one_connector_only() -> None:
    result = _bench("throughput", "--orders", "20", "--warmup", "1")
    assert result["orders"] == 20 and result["orders_per_second"] > 0
    assert result["connectors"] == 1 and result["broker_rate_limit"] == 0
    _stands_on_its_floor(result)


@pytest.mark.slow  # a whole platform with two connectors started
def test_bench_burst_fills_one_order_of_each_connector_at_the_same_instant() -> None:
    result = _bench(
        "burst", "--connectors", "2", "--rounds", "2", "--warmup", "0", "--pause", "0.2", timeout=240
    )
    assert result["connectors"] == 2 and result["rounds"] == 2 and result["broker_rate_limit"] == 100
    assert result["pause_s"] == 0.2
    assert 0 < result["fill_p50_ms"] <= result["last_fill_ms_max"]
    assert (
        len(result["last_fill_ms_by_round"]) == 2
        and max(result["last_fill_ms_by_round"]) == (result["last_fill_ms_max"])
    )
    _stands_on_its_floor(result)


def test_bench_refuses_an_unknown_benchmark_naming_the_known_ones() -> None:
    out = subprocess.run(mtrobot_command("bench", "nonsense"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "unknown benchmark 'nonsense'" in out.stderr and "density" in out.stderr and "burst" in out.stderr


def test_bench_books_saves_a_grown_history_beside_the_append_it_stands_on() -> None:
    result = _bench("books", "--orders", "200", "--rounds", "3")  # exits 1 if the restore differed
    assert result["bench"] == "books" and result["saves"] == 3 and result["orders"] == 260
    assert result["deals"] == result["ended_orders"] + 1  # one deal per order, and the opening deposit
    assert result["save_p50_ms"] > 0 and result["append_fsync_p50_ms"] > 0 and result["restore_ms"] > 0
    assert result["bytes_per_save_p50"] > 0 and result["history_mb"] > 0
