"""The audit spool, the full-jitter backoff and the host-wide login bucket."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from mtrobot.connector.backoff import Backoff
from mtrobot.connector.ratelimit import LoginRate, LoginRateLimiter
from mtrobot.connector.spool import Spool


def test_each_cursor_reads_every_record_once_in_order_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, ("a", "b"), segment_bytes=64)
    for i in range(50):
        spool.append(f'{{"n": {i}}}'.encode())
    seen: list[bytes] = []
    while items := spool.read("a", 7):
        seen += [i.payload for i in items]
        spool.commit("a", items[-1])
    assert seen == [f'{{"n": {i}}}'.encode() for i in range(50)]
    assert len(spool.read("b", 1000)) == 50  # the other cursor still has everything


def test_a_reopened_spool_resumes_after_the_last_committed_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path, ("a",))
    for i in range(5):
        spool.append(str(i).encode())
    spool.commit("a", spool.read("a", 2)[-1])
    spool.close()
    again = Spool(tmp_path, ("a",))
    assert [i.payload for i in again.read("a")] == [b"2", b"3", b"4"]


def test_segments_every_cursor_has_passed_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, ("a",), segment_bytes=16)
    for i in range(20):
        spool.append(f"record-{i:04d}".encode())
    while items := spool.read("a", 100):
        spool.commit("a", items[-1])
    assert len(list(tmp_path.glob("seg-*.jsonl"))) == 1
    assert spool.backlog("a") == 0


def test_backoff_stays_between_base_and_the_doubling_ceiling_capped() -> None:
    b = Backoff(0.5, 8.0)
    rng = random.Random(7)
    for attempt in range(1, 12):
        for _ in range(50):
            d = b.delay(attempt, rng)
            assert 0.5 <= d <= min(8.0, 0.5 * 2 ** (attempt - 1))
    assert b.ceiling(20) == 8.0


def test_backoff_refuses_a_cap_below_its_base() -> None:
    with pytest.raises(ValueError, match="base <= cap"):
        Backoff(5.0, 1.0)


def test_the_login_bucket_is_shared_through_its_file(tmp_path: Path) -> None:
    rate = LoginRate(per_second=1.0, burst=2.0)
    one = LoginRateLimiter(tmp_path, "Broker-Demo", rate)
    other = LoginRateLimiter(tmp_path, "Broker-Demo", rate)  # another agent on the same host
    assert one.try_take(now=100.0) == 0.0
    assert other.try_take(now=100.0) == 0.0
    one.release(now=100.0)
    other.release(now=100.0)
    assert one.try_take(now=100.0) == pytest.approx(1.0)  # bucket empty for everyone
    assert other.try_take(now=101.0) > 0.0  # refilled at one per second, but one asked first
    assert one.try_take(now=101.0) == 0.0
    assert LoginRateLimiter(tmp_path, "Other-Server", rate).try_take(now=101.0) == 0.0


def test_the_bucket_refills_only_once_the_login_in_flight_is_answered(tmp_path: Path) -> None:
    rate = LoginRate(per_second=4.0, burst=1.0)
    one, other = (LoginRateLimiter(tmp_path, "Broker-Demo", rate) for _ in range(2))
    assert one.try_take(now=100.0) == 0.0
    # One login slow on its way (a loaded host): nothing accrues meanwhile, however long it takes.
    assert other.try_take(now=100.9) == pytest.approx(0.05)  # next in line: looks again soon
    one.release(now=101.0)
    assert other.try_take(now=101.2) == pytest.approx(0.05)  # a full 0.25 s from the answer
    assert other.try_take(now=101.25) == 0.0


def test_a_login_that_never_ends_holds_the_bucket_only_for_its_lease(tmp_path: Path) -> None:
    rate = LoginRate(per_second=2.0, burst=1.0)
    dead = LoginRateLimiter(tmp_path, "Broker-Demo", rate, lease_s=10.0)
    alive = LoginRateLimiter(tmp_path, "Broker-Demo", rate)
    assert dead.try_take(now=100.0) == 0.0  # then its process is killed: no release
    assert alive.try_take(now=109.0) > 0.0
    assert alive.try_take(now=110.5) == 0.0  # the lease ended at 110: refilled from then


@pytest.mark.parametrize(
    "content",
    [
        '{"tokens": 0, "stamp": 5, "flying": [1]}',
        '{"tokens": NaN, "stamp": 5}',
        "{]",
        '{"tokens": 0, "stamp": 1e400}',
        '{"tokens": 0, "stamp": 5, "flying": {"x": Infinity}}',
    ],
)
def test_a_damaged_bucket_file_starts_full_again(tmp_path: Path, content: str) -> None:
    limiter = LoginRateLimiter(tmp_path, "Broker-Demo", LoginRate(per_second=1.0, burst=1.0))
    (tmp_path / "login-buckets").mkdir()
    (tmp_path / "login-buckets" / "Broker-Demo.json").write_text(content)
    assert limiter.try_take(now=100.0) == 0.0


def test_a_bucket_stamped_in_the_future_or_a_lease_for_ever_holds_an_hour_at_most(tmp_path: Path) -> None:
    limiter = LoginRateLimiter(tmp_path, "Broker-Demo", LoginRate(per_second=1.0, burst=1.0))
    (tmp_path / "login-buckets").mkdir()
    (tmp_path / "login-buckets" / "Broker-Demo.json").write_text(
        '{"tokens": 0, "stamp": 1e15, "flying": {"x": 1e15}}'
    )
    assert limiter.try_take(now=100.0) > 0.0
    assert limiter.try_take(now=3701.0) == 0.0


def test_waiters_take_their_turns_in_order_and_one_that_stops_asking_loses_its_place(tmp_path: Path) -> None:
    rate = LoginRate(per_second=1.0, burst=1.0)
    first, second, third = (LoginRateLimiter(tmp_path, "Broker-Demo", rate) for _ in range(3))
    assert first.try_take(now=100.0) == 0.0
    first.release(now=100.0)
    waits = [second.try_take(now=100.1), third.try_take(now=100.2)]
    assert waits[0] == pytest.approx(0.9) and waits[1] > waits[0]  # the second of the line waits longer
    assert third.try_take(now=101.0) > 0.0  # a token is there, but it is second's turn
    assert second.try_take(now=101.0) == 0.0
    second.release(now=101.0)
    assert third.try_take(now=102.0) == 0.0
    third.release(now=102.0)
    gone = LoginRateLimiter(tmp_path, "Broker-Demo", rate)
    assert gone.try_take(now=102.5) > 0.0  # asks once, then never again (killed)
    assert first.try_take(now=102.6) > 0.0  # behind it for now
    assert first.try_take(now=110.0) == 0.0  # it missed its time by far: dropped from the line


def test_a_holder_killed_mid_login_lets_the_next_login_go_at_once(tmp_path: Path) -> None:
    rate = LoginRate(per_second=1000.0, burst=1.0)
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from mtrobot.connector.ratelimit import LoginRate, LoginRateLimiter\n"
        f"limiter = LoginRateLimiter(Path({str(tmp_path)!r}), 'Broker-Demo', LoginRate(1000.0, 1.0))\n"
        "assert limiter.try_take() == 0.0\n"
        "print('taken', flush=True)\n"
        "time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "taken"
        waiting = LoginRateLimiter(tmp_path, "Broker-Demo", rate)
        assert waiting.try_take() > 0.0  # its login is in flight (lease 75 s)
        child.kill()
        child.wait(timeout=10)
        assert waiting.try_take() == 0.0  # its lease file let go with the process: over at once
    finally:
        child.kill()
        child.wait(timeout=10)
    leases = sorted((tmp_path / "login-buckets").glob("*.lease"))
    assert len(leases) == 1  # the dead one's is gone; the one left is the new login's own
    waiting.release()
    assert not list((tmp_path / "login-buckets").glob("*.lease"))
