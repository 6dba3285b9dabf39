"""The robot catalogue: built-ins, robots from a folder and from entry points, parameters."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mtrobot.hub.schemas import PortfolioConfig
from mtrobot.robots.catalogue import Catalogue, ParamsRefused, parse_assignments
from mtrobot.robots.portfolio import check_portfolio

ROBOT_FILE = '''
from pydantic import Field
from mtrobot.robots.api import Params, Robot

class EchoParams(Params):
    level: int = Field(default=3, ge=1, le=9, description="how loud")

class Echo(Robot[EchoParams]):
    """Does nothing, loudly."""
    name = "echo"
    description = "A robot from the operator's folder."
    params_model = EchoParams
'''


def test_the_four_builtin_robots_are_listed_with_ranges_and_defaults() -> None:
    infos = {info.name: info for info in Catalogue().infos()}
    assert set(infos) == {"ma_cross", "rsi_reversion", "breakout_atr", "grid_averaging"}
    fast = next(p for p in infos["ma_cross"].parameters if p.name == "fast")
    assert (fast.type, fast.default, fast.minimum, fast.maximum) == ("int", 10, 2, 200)
    direction = next(p for p in infos["grid_averaging"].parameters if p.name == "direction")
    assert direction.choices == ("long", "short")
    assert all(info.description and info.details for info in infos.values())


def test_a_robot_file_in_the_folder_joins_the_catalogue(tmp_path: Path) -> None:
    (tmp_path / "echo.py").write_text(ROBOT_FILE)
    catalogue = Catalogue.load(tmp_path)
    assert "echo" in catalogue.names() and not catalogue.problems
    assert catalogue.make("echo", {"level": 5}).params.level == 5


def test_a_broken_file_or_a_taken_name_is_reported_and_left_out(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import no_such_module\n")
    (tmp_path / "thief.py").write_text(ROBOT_FILE.replace('"echo"', '"ma_cross"'))
    catalogue = Catalogue.load(tmp_path)
    assert catalogue.names() == ["breakout_atr", "grid_averaging", "ma_cross", "rsi_reversion"]
    assert any("broken.py" in p and "No module named" in p for p in catalogue.problems)
    assert any("thief.py" in p and "name is taken (builtin)" in p for p in catalogue.problems)


def test_a_robot_from_an_entry_point_joins_the_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site"
    (package / "echo_pkg").mkdir(parents=True)
    (package / "echo_pkg" / "__init__.py").write_text(ROBOT_FILE.replace('"echo"', '"echo_ep"'))
    dist = package / "echo_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mtrobot.robots]\necho_ep = echo_pkg:Echo\n")
    monkeypatch.syspath_prepend(str(package))
    try:
        catalogue = Catalogue.load(None)
    finally:
        sys.modules.pop("echo_pkg", None)
    assert "echo_ep" in catalogue.names()
    assert next(i for i in catalogue.infos() if i.name == "echo_ep").source == "entry point echo_ep"


def test_command_line_values_are_read_as_their_parameters_types() -> None:
    robot = Catalogue().get("grid_averaging")
    assert robot is not None
    assert parse_assignments(robot, ["step_points=250", "direction=short"]) == {
        "step_points": 250,
        "direction": "short",
    }
    with pytest.raises(ParamsRefused, match="has no parameter 'stepp'"):
        parse_assignments(robot, ["stepp=1"])
    with pytest.raises(ParamsRefused, match="not a whole number"):
        parse_assignments(robot, ["step_points=2.5"])


def test_parameters_of_the_wrong_type_or_out_of_range_are_refused_not_coerced() -> None:
    catalogue = Catalogue()
    for bad in ({"fast": "10"}, {"fast": True}, {"fast": 1}, {"fast": 40, "slow": 30}, {"nope": 1}):
        with pytest.raises(ParamsRefused):
            catalogue.make("ma_cross", bad)


def test_a_portfolio_with_an_unknown_robot_or_bad_parameters_names_each_field() -> None:
    config = PortfolioConfig.model_validate(
        {
            "active": True,
            "robots": [
                {"robot": "no_such_robot", "symbol": "EURUSD"},
                {"robot": "ma_cross", "symbol": "EURUSD", "params": {"fast": 500}},
                {"robot": "ma_cross", "symbol": "GBPUSD", "params": {"fast": 40, "slow": 30}},
            ],
        }
    )
    problems = {(p.field, p.code) for p in check_portfolio(config, Catalogue())}
    assert problems == {
        ("robots.0.robot", "no_such_robot"),
        ("robots.1.params.fast", "invalid_parameter"),
        ("robots.2.params", "invalid_parameter"),
    }
