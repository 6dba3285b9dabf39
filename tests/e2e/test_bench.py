from __future__ import annotations

import json
import subprocess

from tests.e2e.proc_tools import mtrobot_command


def test_bench_latency_prints_order_and_bare_nats_medians_measured_in_one_run() -> None:
    out = subprocess.run(
        mtrobot_command("bench", "latency", "--orders", "5", "--warmup", "1"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bench"] == "latency" and result["orders"] == 5
    assert 0 < result["nats_request_reply_p50_ms"] < result["order_p50_ms"] <= result["order_p99_ms"]
    assert result["ratio_p50"] > 1


def test_bench_names_an_unbuilt_benchmark_instead_of_faking_it() -> None:
    out = subprocess.run(mtrobot_command("bench", "burst"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "not built yet" in out.stderr


def test_bench_refuses_an_unknown_benchmark_naming_the_known_ones() -> None:
    out = subprocess.run(mtrobot_command("bench", "nonsense"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "unknown benchmark 'nonsense'" in out.stderr and "density" in out.stderr
