"""The idempotency journal: intent before send, transitions through the lifecycle, outbox, survival."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mtrobot.connector.journal import Journal
from mtrobot.core.events import Fill
from mtrobot.core.lifecycle import IllegalTransition, OrderState

S = OrderState


def _journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "j.sqlite3", "acc1")


def _fill(deal: int, volume: float = 0.1) -> Fill:
    return Fill(
        order_id="o1",
        account="acc1",
        symbol="EURUSD",
        side="buy",
        ticket=7,
        deal=deal,
        position=7,
        volume=volume,
        price=1.1,
        requested_volume=0.2,
        remaining_volume=0.0,
        partial=False,
        retcode=10009,
        broker_time=datetime.now(UTC),
        latency_ms=1.0,
    )


def test_a_new_order_is_admitted_once_and_a_second_admission_returns_the_existing_row(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    first = j.admit("o1", "EURUSD", {"x": 1}, 5, "m-o1", 42)
    second = j.admit("o1", "EURUSD", {"x": 2}, 6, "m-o1", 42)
    assert first.new and not second.new
    assert second.entry.stream_seq == 5 and second.entry.request == {"x": 1}
    updates = [json.loads(o.payload)["state"] for o in j.outbox() if o.kind == "update"]
    assert updates == ["received"]


def test_the_intent_to_send_is_durable_before_the_broker_is_called(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.admit("o1", "EURUSD", {}, 1, "m-o1", 42)
    j.transition("o1", S.VALIDATED)
    j.begin_attempt("o1")
    j.close()
    reopened = _journal(tmp_path)
    entry = reopened.get("o1")
    assert entry is not None and entry.state is S.SENT and entry.attempts == 1 and entry.sent_at


def test_the_first_intent_records_validated_on_the_way_with_both_updates(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.admit("o1", "EURUSD", {}, 1, "m-o1", 42)
    entry = j.begin_attempt("o1", via=S.VALIDATED)
    assert entry.state is S.SENT and entry.attempts == 1
    updates = [json.loads(o.payload)["state"] for o in j.outbox() if o.kind == "update"]
    assert updates == ["received", "validated", "sent"]
    j.close()
    reopened = _journal(tmp_path)
    again = reopened.get("o1")
    assert again is not None and again.state is S.SENT and again.attempts == 1


def test_a_state_to_pass_through_is_skipped_when_the_order_is_in_it_and_checked_when_not(
    tmp_path: Path,
) -> None:
    j = _journal(tmp_path)
    j.admit("o1", "EURUSD", {}, 1, "m-o1", 42)
    j.transition("o1", S.VALIDATED)
    j.begin_attempt("o1", via=S.VALIDATED)
    updates = [json.loads(o.payload)["state"] for o in j.outbox() if o.kind == "update"]
    assert updates == ["received", "validated", "sent"]
    j.admit("o2", "EURUSD", {}, 2, "m-o2", 42)
    with pytest.raises(IllegalTransition):
        j.transition("o2", S.SENT, via=S.FILLED)
    assert j.get("o2").state is S.RECEIVED  # type: ignore[union-attr]


def test_transitions_follow_the_lifecycle_table_and_refuse_illegal_ones(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.admit("o1", "EURUSD", {}, 1, "m-o1", 42)
    with pytest.raises(IllegalTransition):
        j.transition("o1", S.FILLED)
    assert j.get("o1").state is S.RECEIVED  # type: ignore[union-attr]


def test_fills_are_recorded_once_per_deal_and_published_once(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.admit("o1", "EURUSD", {}, 1, "m-o1", 42)
    j.transition("o1", S.VALIDATED)
    j.begin_attempt("o1")
    j.transition("o1", S.PARTIALLY_FILLED, fills=[_fill(100)])
    j.transition("o1", S.FILLED, fills=[_fill(100), _fill(101)])
    entry = j.get("o1")
    assert entry is not None and entry.filled_volume == pytest.approx(0.2)
    assert [f.deal for f in j.fills("o1")] == [100, 101]
    assert [o.kind for o in j.outbox()].count("fill") == 2


def test_repeating_a_step_after_a_crash_changes_nothing_and_publishes_nothing(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.admit("o1", "EURUSD", {}, 1, "m-o1", 42)
    j.transition("o1", S.VALIDATED)
    before = len(j.outbox())
    j.transition("o1", S.VALIDATED)
    assert len(j.outbox()) == before


def test_a_duplicate_only_publishes_an_order_update_duplicate(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.admit("o1", "EURUSD", {}, 1, "m-o1", 42)
    j.remove_outbox(o.id for o in j.outbox())
    j.record_duplicate("o1", "EURUSD")
    [out] = j.outbox()
    assert json.loads(out.payload)["state"] == "duplicate" and out.subject == "broker.order.acc1.EURUSD"
    assert j.get("o1").state is S.RECEIVED  # type: ignore[union-attr]


def test_open_entries_list_every_order_not_yet_terminal(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    for oid in ("a", "b", "c"):
        j.admit(oid, "EURUSD", {}, None, f"m-{oid}", 1)
    j.transition("a", S.REJECTED)
    j.transition("b", S.VALIDATED)
    assert [e.order_id for e in j.open_entries()] == ["b", "c"]


def test_open_entries_are_the_orders_in_every_state_but_the_terminal_ones(tmp_path: Path) -> None:
    """Asked for by the open states (so the state index answers): a state added to the lifecycle is
    either terminal or found here."""
    j = _journal(tmp_path)
    paths = {
        S.RECEIVED: (),
        S.VALIDATED: (S.VALIDATED,),
        S.SENT: (S.VALIDATED, S.SENT),
        S.ACCEPTED: (S.VALIDATED, S.SENT, S.ACCEPTED),
        S.PARTIALLY_FILLED: (S.VALIDATED, S.SENT, S.PARTIALLY_FILLED),
        S.UNKNOWN: (S.VALIDATED, S.SENT, S.UNKNOWN),
        S.FILLED: (S.VALIDATED, S.SENT, S.FILLED),
        S.REJECTED: (S.REJECTED,),
        S.CANCELLED: (S.VALIDATED, S.SENT, S.ACCEPTED, S.CANCELLED),
        S.EXPIRED: (S.VALIDATED, S.SENT, S.ACCEPTED, S.EXPIRED),
    }
    for state, path in paths.items():
        j.admit(state.value, "EURUSD", {}, None, f"m-{state.value}", 1)
        for step in path:
            j.transition(state.value, step)
    reached = {e.order_id for e in j.open_entries()}
    assert reached == {s.value for s in paths if not s.is_terminal}
    assert set(paths) | {S.DUPLICATE} == set(S)  # every state but "duplicate" (never an order's row) tried


def _write_then_die(path: str, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    j = Journal(Path(path), "acc1")
    j.admit("o1", "EURUSD", {}, 1, "m-o1", 42)
    j.transition("o1", S.VALIDATED)
    j.begin_attempt("o1")
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)


def test_the_journal_survives_a_sigkill_right_after_a_commit(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_write_then_die, args=(str(tmp_path / "j.sqlite3"), ready))
    proc.start()
    proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    entry = _journal(tmp_path).get("o1")
    assert entry is not None and entry.state is S.SENT and entry.attempts == 1
