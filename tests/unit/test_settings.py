"""Settings from the environment: the host-wide login rate is read, and a broken value is one clear refusal
naming the variable (exit code 2), never a traceback or a silently coerced rate."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtrobot.cli import app
from mtrobot.settings import Settings


def test_the_login_rate_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MTROBOT_LOGIN_RATE_PER_S", "5")
    monkeypatch.setenv("MTROBOT_LOGIN_BURST", "12.5")
    settings = Settings(data_dir=tmp_path)
    assert (settings.login_rate_per_s, settings.login_burst) == (5.0, 12.5)
    monkeypatch.delenv("MTROBOT_LOGIN_RATE_PER_S")
    monkeypatch.delenv("MTROBOT_LOGIN_BURST")
    default = Settings(data_dir=tmp_path)
    assert (default.login_rate_per_s, default.login_burst) == (2.0, 4.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MTROBOT_LOGIN_RATE_PER_S", "0"),
        ("MTROBOT_LOGIN_RATE_PER_S", "-2"),
        ("MTROBOT_LOGIN_RATE_PER_S", "nan"),
        ("MTROBOT_LOGIN_RATE_PER_S", "inf"),
        ("MTROBOT_LOGIN_RATE_PER_S", "fast"),
        ("MTROBOT_LOGIN_BURST", "0.5"),
        ("MTROBOT_LOGIN_BURST", ""),
        ("MTROBOT_ORDERS_PER_MIN", "-1"),
        ("MTROBOT_ORDERS_PER_MIN", "inf"),
        ("MTROBOT_ORDERS_PER_MIN", "nan"),
        ("MTROBOT_ORDER_BURST", "many"),
        ("MTROBOT_ORDER_BURST", "2.5"),
    ],
)
def test_a_broken_login_rate_is_refused_naming_the_variable(name: str, value: str, tmp_path: Path) -> None:
    # `up` reads its settings before anything else: refused, it starts nothing and configures no logging.
    result = CliRunner().invoke(app, ["up", "--data-dir", str(tmp_path)], env={name: value})
    assert result.exit_code == 2, result.output
    assert f"error: {name}:" in result.output
    assert "Traceback" not in result.output
