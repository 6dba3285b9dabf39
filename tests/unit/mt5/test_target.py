"""Which simulator initialize() attaches to: options, environment, the platform's run file, else private."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import mtrobot.mt5 as mt5
from mtrobot.mt5.client import Mt5Client
from mtrobot.mt5.target import ENV_TARGET, TargetError, resolve
from mtrobot.settings import Settings


def test_embedded_by_option_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path)
    assert resolve("embedded", settings).broker is not None
    monkeypatch.setenv(ENV_TARGET, "embedded")
    assert resolve(None, settings).broker is not None


def test_a_simbroker_address_has_no_admin_channel(tmp_path: Path) -> None:
    sim = resolve("127.0.0.1:4999", Settings(data_dir=tmp_path))
    assert sim.admin is None and sim.broker is None and "127.0.0.1:4999" in sim.label


def test_the_platforms_run_file_is_used_while_its_process_lives(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    settings.run_dir.mkdir(parents=True)
    info = {
        "host": "127.0.0.1",
        "port": 4998,
        "servers": ["MTRobot-Demo"],
        "admin_token": "t",
        "pid": os.getpid(),
    }
    (settings.run_dir / "simbroker.json").write_text(json.dumps(info))
    sim = resolve(None, settings)
    assert sim.admin is not None and sim.servers == ["MTRobot-Demo"]
    assert sim.accounts_file == tmp_path / "mt5" / "accounts.json"
    (settings.run_dir / "simbroker.json").write_text(json.dumps(info | {"pid": 2**22 + 12345}))  # gone
    assert resolve(None, settings).broker is not None  # a private simulator instead


def test_a_bad_target_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="not 'embedded', a run file or HOST:PORT"):
        resolve("nowhere", Settings(data_dir=tmp_path))
    client = Mt5Client(target=str(tmp_path / "missing.json"), settings=Settings(data_dir=tmp_path))
    assert client.initialize() is False
    code, text = client.last_error()
    assert code == mt5.RES_E_INTERNAL_FAIL_INIT and text.startswith("IPC initialize failed, ")
