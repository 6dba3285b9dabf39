"""The agent's hand-off is refused with the field named, never half-read; the trading gate says why."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from mtrobot.agent.gate import TradingGate
from mtrobot.agent.handoff import parse_handoff
from mtrobot.core.agent import AgentState
from mtrobot.core.errors import ConfigError
from mtrobot.settings import Settings
from mtrobot.vault import Vault, load_keyring


def _line(tmp_path: Path, account: str = "acct-1", **extra: object) -> bytes:
    vault = Vault(load_keyring(Settings(data_dir=tmp_path)))
    record = vault.seal(account, "pw-secret")
    key = base64.b64encode(vault.unwrap_data_key(record)).decode()
    message = {"handoff": {"record": record.to_dict(), "data_key": key}, "login": 7, "server": "S"} | extra
    return json.dumps(message).encode()


def test_a_hand_off_opens_for_its_own_account_only(tmp_path: Path) -> None:
    handoff = parse_handoff("acct-1", _line(tmp_path, bus={"creds": "/c.creds", "inbox_prefix": "_I.a"}))
    assert handoff.credentials.password.get_secret_value() == "pw-secret"
    assert handoff.connect_options() == {"creds": "/c.creds", "inbox_prefix": "_I.a"}
    assert "pw-secret" not in repr(handoff)
    with pytest.raises(ConfigError, match="cannot be opened"):
        parse_handoff("acct-2", _line(tmp_path))


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (b"not json", "one JSON object"),
        (b'{"login": 1}', "'handoff'"),
    ],
)
def test_a_broken_hand_off_is_refused_naming_what_is_wrong(line: bytes, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        parse_handoff("acct-1", line)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"bus": "x"}, "'bus'"),
        ({"bus": {"creds": 5}}, "'bus.creds'"),
        ({"control": {"state": 1}}, "'control.state'"),
        ({"control": {"state": "open"}}, "'control.state'"),
        ({"backend": True}, "'backend'"),
    ],
)
def test_wrong_types_in_the_hand_off_are_refused_not_coerced(
    tmp_path: Path, extra: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(field)):
        parse_handoff("acct-1", _line(tmp_path, **extra))


def test_the_gate_refuses_with_the_reason_and_keeps_it_across_a_restart(tmp_path: Path) -> None:
    gate = TradingGate(tmp_path / "gate.json")
    assert gate() is None
    gate.pause("paused by the trader")
    assert gate() == "paused by the trader"
    assert TradingGate(tmp_path / "gate.json").state is AgentState.PAUSED
    gate.quarantine("memory over 256 MiB")
    gate.pause("paused by the trader")  # a pause never hides a quarantine
    assert gate() == "quarantined: memory over 256 MiB"
    gate.resume()
    assert gate() is None and TradingGate(tmp_path / "gate.json").state is AgentState.RUNNING
