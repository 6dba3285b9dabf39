from __future__ import annotations

from mtrobot.launcher import Launcher, Part, UpOptions
from mtrobot.settings import Settings


def test_children_inherit_no_secret_and_only_a_part_that_needs_it_sees_the_master_key(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("MTROBOT_MASTER_KEY", "k" * 44)
    monkeypatch.setenv("MT5_PASSWORD", "broker-secret")
    launcher = Launcher(Settings(data_dir=tmp_path), UpOptions())
    plain = launcher.child_env("nats://127.0.0.1:1", Part("connector"))
    web = launcher.child_env("nats://127.0.0.1:1", Part("web", master_key=True))
    assert "MTROBOT_MASTER_KEY" not in plain and "MT5_PASSWORD" not in plain
    assert web["MTROBOT_MASTER_KEY"] == "k" * 44 and "MT5_PASSWORD" not in web
    assert plain["MTROBOT_NATS_URL"] == "nats://127.0.0.1:1"
