"""The hand-off of an account's credentials to its agent: no password, no master key on the way."""

from __future__ import annotations

import asyncio
import json

import pytest

from mtrobot.connector.credentials import open_handoff
from mtrobot.core.errors import ConfigError
from mtrobot.supervisor.handoff import credentials_handoff

from .conftest import register, seed_account, state_of

PASSWORD = "Agent-Only-Secret-9"


def test_the_agent_opens_its_hand_off_and_nothing_on_the_way_holds_the_password_or_master_key(
    client, settings
) -> None:
    trader = register(client)
    account = seed_account(state_of(client), trader.id, PASSWORD)
    line = asyncio.run(credentials_handoff(settings, account, wait_s=5))
    assert PASSWORD.encode() not in line
    keys = [entry["key"] for entry in json.loads((settings.data_dir / "master.key").read_text())["keys"]]
    assert keys and not any(key.encode() in line for key in keys)
    creds = open_handoff(account, json.loads(line))
    assert creds.password.get_secret_value() == PASSWORD
    assert creds.login is not None and creds.server == "Sim-Demo"


def test_a_hand_off_opened_as_another_account_fails(client, settings) -> None:
    trader = register(client)
    account = seed_account(state_of(client), trader.id, PASSWORD)
    line = asyncio.run(credentials_handoff(settings, account, wait_s=5))
    with pytest.raises(ConfigError, match="cannot be opened"):
        open_handoff("someone-else", json.loads(line))


def test_a_hand_off_for_an_account_that_is_never_stored_gives_up_with_a_clear_error(settings) -> None:
    with pytest.raises(ConfigError, match="no stored credentials"):
        asyncio.run(credentials_handoff(settings, "nobody", wait_s=0.5))
