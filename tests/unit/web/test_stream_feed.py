"""The live stream's fan-out: newest state per account, no backlog, only the accounts watched."""

from __future__ import annotations

import asyncio
import json

from mtrobot.core.events import AccountSnapshot, ConnectionState
from mtrobot.core.lifecycle import OrderState, follow
from mtrobot.web.stream import SnapshotFeed, Watcher


def snap(account: str, seq: int, equity: float = 0.0) -> AccountSnapshot:
    return AccountSnapshot(seq=seq, account=account, connection=ConnectionState.CONNECTED, equity=equity)


def drained(watcher: Watcher) -> list[dict]:
    return [json.loads(t) for t in asyncio.run(watcher.next())]


def test_a_client_that_does_not_read_holds_one_message_per_account_the_newest() -> None:
    feed, slow = SnapshotFeed(), Watcher()
    feed.watch(slow, ["a", "b"])
    for seq in range(1, 1001):
        feed.offer(snap("a", seq, equity=seq))
        feed.offer(snap("b", seq, equity=-seq))
    assert slow.pending() == 2
    got = {m["account"]: m["snapshot"]["equity"] for m in drained(slow)}
    assert got == {"a": 1000, "b": -1000}
    assert slow.replaced == 2 * 999


class Socket:
    """A socket's direct frame writer: takes frames while ``open`` (its client reads), refuses them else."""

    def __init__(self) -> None:
        self.open = True
        self.frames: list[bytes] = []

    def write(self, frame: bytes) -> bool:
        if self.open:
            self.frames.append(frame)
        return self.open


def seqs(frames: list[bytes]) -> list[int]:
    return [json.loads(f[f.index(b"{") :])["seq"] for f in frames]


def test_a_client_that_keeps_up_gets_each_snapshot_written_straight_a_paused_one_the_newest_later() -> None:
    feed, socket = SnapshotFeed(), Socket()
    watcher = Watcher(socket)  # type: ignore[arg-type]
    feed.watch(watcher, ["a"])
    feed.offer(snap("a", 1))
    feed.offer(snap("a", 2))
    assert seqs(socket.frames) == [1, 2] and watcher.written == 2 and watcher.pending() == 0
    socket.open = False  # its buffer is full: the client stopped reading
    for seq in range(3, 100):
        feed.offer(snap("a", seq))
    assert watcher.pending() == 1 and [m["seq"] for m in drained(watcher)] == [99]
    assert seqs(socket.frames) == [1, 2]


def test_nothing_is_written_straight_past_a_message_the_sender_still_holds() -> None:
    feed, socket = SnapshotFeed(), Socket()
    watcher = Watcher(socket)  # type: ignore[arg-type]
    watcher.notice('{"type": "hello"}')
    feed.watch(watcher, ["a"])
    feed.offer(snap("a", 1))
    assert socket.frames == [] and watcher.pending() == 1  # the hello goes first, through the sender

    async def sender_takes_then_news_arrives() -> list[bytes]:
        held = await watcher.next()  # the sender holds the hello and seq 1, not sent yet
        assert [json.loads(t)["type"] for t in held] == ["hello", "snapshot"]
        feed.offer(snap("a", 2))
        await asyncio.sleep(0)  # the feed's flush
        before = list(socket.frames)
        assert [m["seq"] for m in json.loads("[" + ",".join(await watcher.next()) + "]")] == [2]
        return before

    assert asyncio.run(sender_takes_then_news_arrives()) == []  # seq 2 waited for the sender


def test_an_older_or_repeated_snapshot_is_dropped() -> None:
    feed, watcher = SnapshotFeed(), Watcher()
    feed.watch(watcher, ["a"])
    assert feed.offer(snap("a", 5))
    assert not feed.offer(snap("a", 5)) and not feed.offer(snap("a", 4))
    assert [m["seq"] for m in drained(watcher)] == [5]


def test_a_new_watcher_gets_the_latest_at_once_and_never_another_accounts() -> None:
    feed = SnapshotFeed()
    feed.offer(snap("a", 1))
    feed.offer(snap("b", 1))
    b_only = Watcher()
    feed.watch(b_only, ["b"])
    feed.offer(snap("a", 2))
    assert [m["account"] for m in drained(b_only)] == ["b"]
    feed.watch(b_only, [])
    feed.offer(snap("b", 2))
    assert b_only.pending() == 0 and feed.watcher_count() == 0


def test_a_copy_of_an_order_follows_news_and_ignores_echoes() -> None:
    s = OrderState
    assert follow(s.RECEIVED, s.RECEIVED) is None  # the connector's own "received": an echo, not an error
    assert follow(s.RECEIVED, s.FILLED) is s.FILLED  # missed steps in between: still news
    assert follow(s.FILLED, s.SENT) is None  # a re-published old event
    assert follow(s.SENT, s.SENT) is None and follow(s.UNKNOWN, s.SENT) is None
    assert follow(s.PARTIALLY_FILLED, s.FILLED) is s.FILLED
